"""The local EventBridge: the deployed rules, and the events the local services send.

On AWS, SageMaker sends a ``SageMaker Model Package State Change`` event to
the default event bus when a package is registered and when its approval
status changes; every enabled rule whose pattern matches delivers it to its
targets. Locally the registry sends the same event (:func:`model_package_event`,
built from the package as DescribeModelPackage shows it, as in the AWS docs'
example: "Events that Amazon SageMaker sends to Amazon EventBridge", Model
package state change), and :func:`put_event` matches it against the rules the
local deployer recorded from the templates (``AWS::Events::Rule``) and
records the deliveries. There is no SNS locally: a delivery to a topic is
recorded (and printed by the command that caused it), not sent.

State (docs/CONTRACTS.md §4):

- ``events/rules/{Name}.json``: a deployed rule (``Name``, ``Arn``,
  ``EventPattern``, ``State``, ``Targets``, ``Stack``);
- ``events/events.jsonl``: one line per event put on the bus:
  ``{"Event": {...}, "Deliveries": [{"Rule", "RuleArn", "TargetId", "TargetArn"}]}``.
  Appended under an exclusive lock, one ``write`` per line, so concurrent
  writers (a training run's registration, ``stsmon model approve``) never
  interleave.

Pattern matching follows EventBridge's documented rules ("Creating event
patterns", "Content filtering in Amazon EventBridge event patterns"): every
field of the pattern must be in the event; a leaf is a list of values, any of
which may match (for an event array, any of its elements); nested objects
match field by field. Content filters supported: ``prefix``, ``exists``,
``anything-but`` (a value, a list, or ``{"prefix": ...}``); any other filter is
refused when the rule is deployed (:func:`check_pattern`), never ignored.
tests/stsmon/localcloud/test_events.py checks the matcher against moto's
``test_event_pattern``.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stscontracts import names

from ..errors import StsmonError
from ..state import StateDir
from . import LocalEnvironment

_FILTERS = ("prefix", "exists", "anything-but")


def events_dir(state: StateDir) -> Path:
    return state.root / "events"


def rules_dir(state: StateDir) -> Path:
    return events_dir(state) / "rules"


def log_path(state: StateDir) -> Path:
    return events_dir(state) / "events.jsonl"


# -- patterns --------------------------------------------------------------------------


def check_pattern(pattern: Any, where: str = "EventPattern") -> None:
    """Refuse a pattern the local matcher cannot evaluate exactly (StsmonError naming the field)."""
    if not isinstance(pattern, dict) or not pattern:
        raise StsmonError(f"{where} must be a non-empty JSON object")
    for key, value in pattern.items():
        here = f"{where}.{key}"
        if isinstance(value, dict):
            check_pattern(value, here)
        elif isinstance(value, list):
            if not value:
                raise StsmonError(f"{here}: an empty list matches nothing")
            for item in value:
                if isinstance(item, dict):
                    unknown = sorted(set(item) - set(_FILTERS))
                    if len(item) != 1 or unknown:
                        raise StsmonError(f"{here}: the local event bus supports the content filters "
                                          f"{', '.join(_FILTERS)}, not {', '.join(unknown or item)}")
        else:
            raise StsmonError(f"{here}: a pattern leaf must be a list of values, got {value!r}")


def _leaf_matches(allowed: list[Any], value: Any, present: bool) -> bool:
    values = value if isinstance(value, list) else [value]
    for item in allowed:
        if isinstance(item, dict):
            ((kind, arg),) = item.items()
            if kind == "exists":
                if bool(arg) == present:
                    return True
            elif not present:
                continue
            elif kind == "prefix":
                if any(isinstance(v, str) and v.startswith(arg) for v in values):
                    return True
            elif kind == "anything-but":
                if isinstance(arg, dict):  # {"anything-but": {"prefix": "x"}}
                    prefix = arg.get("prefix", "")
                    if any(not (isinstance(v, str) and v.startswith(prefix)) for v in values):
                        return True
                else:
                    excluded = arg if isinstance(arg, list) else [arg]
                    if any(v not in excluded for v in values):
                        return True
        elif present and any(v == item and type(v) is type(item) for v in values):
            return True
    return False


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches ``pattern`` (EventBridge's rules, the subset in the module docstring)."""
    for key, wanted in pattern.items():
        present = isinstance(event, dict) and key in event
        value = event.get(key) if present else None
        if isinstance(wanted, dict):
            if not present or not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif not _leaf_matches(wanted, value, present):
            return False
    return True


# -- rules (the deployer's records) ----------------------------------------------------


def write_rule(state: StateDir, record: dict[str, Any]) -> None:
    from ..fileio import write_json_atomic

    path = rules_dir(state) / f"{record['Name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)


def remove_rule(state: StateDir, name: str) -> None:
    (rules_dir(state) / f"{name}.json").unlink(missing_ok=True)


def load_rules(state: StateDir) -> list[dict[str, Any]]:
    folder = rules_dir(state)
    if not folder.is_dir():
        return []
    rules = []
    for path in sorted(folder.glob("*.json")):
        try:
            rules.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a rule being replaced right now; the next event sees it
    return rules


# -- the bus -----------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def model_package_event(package: dict[str, Any], *, env: LocalEnvironment, now: datetime) -> dict[str, Any]:
    """The ``SageMaker Model Package State Change`` event for a described package (AWS's shape)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": names.MODEL_PACKAGE_STATE_CHANGE,
        "source": names.EVENT_SOURCE_SAGEMAKER,
        "account": env.account,
        "time": _jsonable(now),
        "region": env.region,
        "resources": [package["ModelPackageArn"]],
        "detail": _jsonable(package),
    }


def put_event(state: StateDir, event: dict[str, Any]) -> list[dict[str, str]]:
    """Match ``event`` against the enabled rules, record it with its deliveries; returns the deliveries."""
    deliveries = []
    for rule in load_rules(state):
        if rule.get("State", "ENABLED") != "ENABLED" or not matches(rule.get("EventPattern") or {}, event):
            continue
        for target in rule.get("Targets") or []:
            deliveries.append({"Rule": rule["Name"], "RuleArn": rule.get("Arn", ""),
                               "TargetId": str(target.get("Id", "")), "TargetArn": str(target.get("Arn", ""))})
    line = (json.dumps({"Event": event, "Deliveries": deliveries}, sort_keys=True) + "\n").encode("utf-8")
    path = log_path(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return deliveries


def registry_listener(state: StateDir, env: LocalEnvironment, clock: Any):
    """The callback a writable :class:`~stsmon.localcloud.registry.Registry` calls with a package it
    registered or whose approval status changed: the event goes on the local bus."""

    def on_change(package: dict[str, Any]) -> None:
        try:
            put_event(state, model_package_event(package, env=env, now=clock.now()))
        except OSError as exc:  # the change itself is committed; only its notification is lost
            import sys

            print(f"warning: the {names.MODEL_PACKAGE_STATE_CHANGE} event of {package['ModelPackageArn']} "
                  f"was not recorded in {log_path(state)}: {exc}", file=sys.stderr)

    return on_change


def log_size(state: StateDir) -> int:
    """Where the event log ends now (a marker for :func:`read_events`)."""
    try:
        return log_path(state).stat().st_size
    except FileNotFoundError:
        return 0


def read_events(state: StateDir, since: int = 0) -> list[dict[str, Any]]:
    """The recorded ``{"Event", "Deliveries"}`` entries from byte offset ``since`` on."""
    try:
        with open(log_path(state), "rb") as handle:
            handle.seek(since)
            data = handle.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def describe_entry(entry: dict[str, Any]) -> str:
    """One line for a person: what happened and who was told."""
    event, deliveries = entry["Event"], entry.get("Deliveries") or []
    detail = event.get("detail") or {}
    what = f"{event.get('detail-type')}: {detail.get('ModelPackageGroupName')}/{detail.get('ModelPackageVersion')} " \
           f"{detail.get('ModelApprovalStatus')}"
    if not deliveries:
        return f"{what} (no rule matched)"
    told = ", ".join(f"{d['TargetArn'].rsplit(':', 1)[-1]} (rule {d['Rule']})" for d in deliveries)
    return f"{what} -> {told}"
