"""The local CloudWatch: metric data points and alarms, under ``{state}/metrics/``.

- ``metrics/{namespace}.jsonl``: one data point per line, ``{"MetricName",
  "Dimensions": {name: value}, "Timestamp", "Value", "Unit", "Source"}``.
  ``Source`` (the monitoring execution id) makes ingesting a run twice a no-op.
- ``metrics/alarms/{AlarmName}.json``: an ``AWS::CloudWatch::Alarm`` as
  deployed plus its state (``StateValue`` OK / ALARM / INSUFFICIENT_DATA,
  ``StateReason``, ``StateUpdatedTimestamp``) and its state history.
- ``metrics/dashboards/{DashboardName}.json``: a deployed dashboard's body.

Alarm evaluation follows CloudWatch's documented rules for single-metric
alarms (:func:`evaluate`): an evaluation range wider than
``EvaluationPeriods`` whose most recent real data points are preferred;
``TreatMissingData`` fills only what real data cannot; ALARM when at least
``DatapointsToAlarm`` of the evaluated points breach. Locally the
evaluation time is the timestamp of the data a monitoring run just
published (its window end), so a run for a past window evaluates that
window; nothing evaluates the alarms between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from stscontracts import metrics as registry

from ..fileio import write_json_atomic
from ..errors import StsmonError
from ..state import StateDir

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
#: CloudWatch's static-threshold operators (the same four Model Monitor's constraints use).
ALARM_COMPARISONS = registry.COMPARISONS
MISSING_DATA = ("missing", "notBreaching", "breaching", "ignore")
HISTORY_KEEP = 200
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def parse_time(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_name(name: str) -> str:
    """A name as a file name: unsafe characters as %XX (reversible, no collisions)."""
    return _SAFE.sub(lambda m: "%" + "".join(f"{b:02X}" for b in m.group(0).encode()), name)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer at a time (the CLI and the scheduler process may both ingest)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Point:
    metric: str
    dimensions: dict[str, str]
    timestamp: datetime
    value: float
    unit: str
    source: str


class MetricStore:
    """Data points by namespace (the local ``PutMetricData`` / ``GetMetricData``)."""

    def __init__(self, state: StateDir) -> None:
        self.folder = state.metrics

    def path(self, namespace: str) -> Path:
        return self.folder / f"{_file_name(namespace)}.jsonl"

    def namespaces(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        names = []
        for path in sorted(self.folder.glob("*.jsonl")):
            for point in self._read(path, limit=1):
                names.append(point["_namespace"])
        return names

    def _read(self, path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as handle:
            for count, line in enumerate(handle):
                if limit is not None and count >= limit:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: the rest of the file is still good

    def put(self, namespace: str, metric_data: Iterable[dict[str, Any]], *, source: str) -> int:
        """Append PutMetricData-shaped data points; returns how many were added (0 if ``source`` was already)."""
        path = self.path(namespace)
        with _locked(self.folder):
            if any(p.get("Source") == source for p in self._read(path)):
                return 0
            lines = []
            for datum in metric_data:
                dims = datum.get("Dimensions") or []
                if isinstance(dims, list):
                    dims = {d["Name"]: d["Value"] for d in dims}
                value = float(datum["Value"])
                if not math.isfinite(value):
                    continue
                lines.append(json.dumps({
                    "_namespace": namespace,
                    "MetricName": datum["MetricName"],
                    "Dimensions": dict(sorted(dims.items())),
                    "Timestamp": iso(parse_time(str(datum["Timestamp"]))),
                    "Value": value,
                    "Unit": datum.get("Unit", "None"),
                    "Source": source,
                }))
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("".join(line + "\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
        return len(lines)

    def published_by(self, source_prefix: str) -> dict[str, list[Point]]:
        """Data points whose Source starts with ``source_prefix`` (e.g. one execution's), by namespace."""
        found: dict[str, list[Point]] = {}
        for path in sorted(self.folder.glob("*.jsonl")) if self.folder.is_dir() else []:
            for raw in self._read(path):
                if str(raw.get("Source", "")).startswith(source_prefix):
                    found.setdefault(raw["_namespace"], []).append(Point(
                        raw["MetricName"], raw.get("Dimensions", {}), parse_time(raw["Timestamp"]), float(raw["Value"]),
                        raw.get("Unit", "None"), raw.get("Source", "")))
        return found

    def points(self, namespace: str, metric: str | None = None, dimensions: dict[str, str] | None = None) -> list[Point]:
        """Data points (oldest first) of a namespace, optionally one metric with exactly these dimensions."""
        out = []
        for raw in self._read(self.path(namespace)):
            if metric is not None and raw.get("MetricName") != metric:
                continue
            if dimensions is not None and raw.get("Dimensions") != dict(sorted(dimensions.items())):
                continue
            out.append(Point(raw["MetricName"], raw.get("Dimensions", {}), parse_time(raw["Timestamp"]),
                             float(raw["Value"]), raw.get("Unit", "None"), raw.get("Source", "")))
        out.sort(key=lambda p: p.timestamp)
        return out


# ------------------------------------------------------------------------------ alarms


def alarms_dir(state: StateDir) -> Path:
    return state.metrics / "alarms"


def dashboards_dir(state: StateDir) -> Path:
    return state.metrics / "dashboards"


def _number(value: Any, name: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StsmonError(f"{where}: {name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise StsmonError(f"{where}: {name} {value!r} is not a finite number")
    return number


def check_alarm_properties(props: dict[str, Any], where: str, is_known: Any = lambda value: True) -> None:
    """Refuse what the local evaluation cannot do, with the reason (deploy's check phase).

    ``is_known(value)``: False for a value not resolved yet (it is checked at create).
    """
    def known(key: str) -> bool:
        return key in props and is_known(props[key])

    if props.get("Metrics"):
        raise StsmonError(f"{where}: metric-math alarms (Metrics) are not evaluated locally; use MetricName/Namespace")
    for key in ("MetricName", "Namespace", "ComparisonOperator", "EvaluationPeriods"):
        if props.get(key) in (None, ""):
            raise StsmonError(f"{where}: {key} is required")
    if known("ExtendedStatistic") and _percentile_of(props["ExtendedStatistic"]) is None:
        raise StsmonError(f"{where}: ExtendedStatistic {props['ExtendedStatistic']!r} is not evaluated locally; "
                          f"use a percentile (p0-p100, e.g. p90) or Statistic ({', '.join(STATISTICS)})")
    if known("Statistic") and props["Statistic"] not in STATISTICS:
        raise StsmonError(f"{where}: Statistic {props['Statistic']!r} is not one of {', '.join(STATISTICS)}")
    if known("ComparisonOperator") and props["ComparisonOperator"] not in ALARM_COMPARISONS:
        raise StsmonError(f"{where}: ComparisonOperator {props['ComparisonOperator']!r} is not evaluated locally "
                          f"(supported: {', '.join(ALARM_COMPARISONS)})")
    if known("TreatMissingData") and props["TreatMissingData"] not in MISSING_DATA:
        raise StsmonError(f"{where}: TreatMissingData {props['TreatMissingData']!r} is not one of {', '.join(MISSING_DATA)}")
    if known("Threshold"):
        _number(props["Threshold"], "Threshold", where)
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if known(key) and _number(props[key], key, where) < 1:
            raise StsmonError(f"{where}: {key} must be at least 1")


def save_alarm(state: StateDir, name: str, arn: str, props: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """Create or update an alarm definition (its state is kept across updates; ``now`` stamps a new one)."""
    path = alarms_dir(state) / f"{_file_name(name)}.json"
    with _locked(alarms_dir(state)):
        previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        record = {
            "AlarmName": name,
            "AlarmArn": arn,
            "Definition": props,
            "StateValue": previous.get("StateValue", "INSUFFICIENT_DATA"),
            "StateReason": previous.get("StateReason", "Unchecked: initial alarm creation"),
            "StateUpdatedTimestamp": previous.get("StateUpdatedTimestamp", iso(now)),
            "History": previous.get("History", []),
        }
        write_json_atomic(path, record)
    return record


def delete_alarm(state: StateDir, name: str) -> None:
    (alarms_dir(state) / f"{_file_name(name)}.json").unlink(missing_ok=True)


def list_alarms(state: StateDir) -> list[dict[str, Any]]:
    folder = alarms_dir(state)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def _percentile_of(extended: Any) -> float | None:
    """The percentile of an ExtendedStatistic like ``p90`` or ``p99.9`` (None for other kinds)."""
    text = str(extended)
    if not text.startswith("p"):
        return None
    try:
        value = float(text[1:])
    except ValueError:
        return None
    return value if 0.0 <= value <= 100.0 else None


def _statistic(values: list[float], statistic: str) -> float:
    percentile = _percentile_of(statistic)
    if percentile is not None:
        # Linear interpolation between closest ranks; CloudWatch estimates
        # percentiles from its own histograms, so values can differ slightly.
        ordered = sorted(values)
        rank = percentile / 100.0 * (len(ordered) - 1)
        low = int(math.floor(rank))
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    if statistic == "Sum":
        return sum(values)
    if statistic == "Minimum":
        return min(values)
    if statistic == "Maximum":
        return max(values)
    if statistic == "SampleCount":
        return float(len(values))
    return sum(values) / len(values)


#: CloudWatch retrieves more periods than EvaluationPeriods when it evaluates an alarm (the
#: "evaluation range"); how many more is not documented (awsdocs/amazon-cloudwatch-user-guide#102).
#: The User Guide's examples retrieve 5 data points for 3 evaluation periods; we take N + 2.
EXTRA_PERIODS = 2


def evaluate(definition: dict[str, Any], points: list[Point], at: datetime, current: str) -> tuple[str, str, list[dict]]:
    """(state, reason, periods) of one alarm at time ``at``; ``current`` is its state before.

    CloudWatch's rules ("How alarm state is evaluated when data is missing", CloudWatch
    User Guide, AlarmThatSendsEmail / alarms-and-missing-data): the statistic of each
    period of the evaluation range (N + :data:`EXTRA_PERIODS` periods aligned to
    ``Period``, the last one holding ``at``); when it holds at least N real data points,
    the N most recent real ones are evaluated and TreatMissingData is not used; with
    fewer, the missing ones are filled with the setting, as few as needed
    (``breaching``: breaching, ``notBreaching``: not breaching); ``missing`` and
    ``ignore`` decide on the real points when they settle it (M of them breaching:
    ALARM; any of them not breaching: OK) and otherwise give INSUFFICIENT_DATA or keep
    the state; no real point at all: INSUFFICIENT_DATA, kept state, ALARM or OK. ALARM
    when at least ``DatapointsToAlarm`` (M) of the N evaluated breach.
    """
    period = int(float(definition.get("Period", 60)))
    n = int(float(definition["EvaluationPeriods"]))
    m = int(float(definition.get("DatapointsToAlarm", n)))
    threshold = float(definition.get("Threshold", 0))
    statistic = definition.get("ExtendedStatistic") or definition.get("Statistic", "Average")
    compare = ALARM_COMPARISONS[definition["ComparisonOperator"]]
    missing = definition.get("TreatMissingData", "missing")
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    last_start = epoch + timedelta(seconds=(int((at - epoch).total_seconds()) // period) * period)
    periods = []
    for k in range(n + EXTRA_PERIODS - 1, -1, -1):
        start = last_start - timedelta(seconds=k * period)
        values = [p.value for p in points if start <= p.timestamp < start + timedelta(seconds=period)]
        value = _statistic(values, statistic) if values else None
        periods.append({"start": iso(start), "value": value, "breaching": None if value is None else compare(value, threshold)})
    real = [p for p in periods if p["value"] is not None]
    evaluated = real[-n:]
    for p in evaluated:
        p["evaluated"] = True
    real_breaching = sum(1 for p in evaluated if p["breaching"])
    fill = n - len(evaluated)
    desc = f"{statistic} of {definition['MetricName']} {definition['ComparisonOperator']} {threshold:g}"
    shown = ", ".join(f"{p['value']:.4g} ({p['start']})" for p in evaluated) or "no data"
    span = f"the last {len(periods)} period(s) of {period} s"
    if not real:
        if missing == "ignore":
            return current, f"no data in {span}: state kept (TreatMissingData ignore)", periods
        if missing == "missing":
            return "INSUFFICIENT_DATA", f"no data in {span}", periods
    if fill and missing in ("missing", "ignore") and real_breaching < m and not any(not p["breaching"] for p in evaluated):
        # only breaching real points, too few to alarm: the missing ones would decide
        if missing == "ignore":
            return current, f"{real_breaching} breaching of {len(evaluated)} data point(s) in {span}, {m} needed: state kept (TreatMissingData ignore) ({desc}): {shown}", periods
        return "INSUFFICIENT_DATA", f"{real_breaching} breaching of {len(evaluated)} data point(s) in {span}, {m} needed ({desc}): {shown}", periods
    breaching = real_breaching + (fill if missing == "breaching" else 0)
    filled = f" + {fill} missing as {'breaching' if missing == 'breaching' else 'not breaching'}" if fill else ""
    if breaching >= m:
        return "ALARM", f"Threshold Crossed: {breaching} of {n} evaluated breaching ({desc}): {shown}{filled}", periods
    return "OK", f"{breaching} of {n} evaluated breaching, {m} needed ({desc}): {shown}{filled}", periods


def evaluate_alarms(state: StateDir, at: datetime, *, now: datetime, namespace: str | None = None) -> list[dict[str, Any]]:
    """Evaluate every deployed alarm (of ``namespace``) at ``at`` (the data's time); record
    state changes, stamped ``now`` (when the evaluation happens, from the caller's clock).

    Returns one entry per alarm: name, metric, state, previous state, reason,
    changed (bool).
    """
    store = MetricStore(state)
    results = []
    with _locked(alarms_dir(state)):
        for record in list_alarms(state):
            definition = record["Definition"]
            if namespace is not None and definition.get("Namespace") != namespace:
                continue
            dims = {d["Name"]: d["Value"] for d in definition.get("Dimensions") or []}
            points = store.points(definition["Namespace"], definition["MetricName"], dims)
            previous = record.get("StateValue", "INSUFFICIENT_DATA")
            state_value, reason, periods = evaluate(definition, points, at, previous)
            changed = state_value != previous
            stamp = iso(now)
            if changed:
                record["History"] = (record.get("History", []) + [{
                    # to the millisecond, as CloudWatch's alarm history: changes within one second stay ordered
                    "Timestamp": now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"), "EvaluatedAt": iso(at), "From": previous, "To": state_value, "Reason": reason,
                    "Actions": (definition.get("AlarmActions") if state_value == "ALARM" else
                                definition.get("OKActions") if state_value == "OK" else
                                definition.get("InsufficientDataActions")) or [],
                }])[-HISTORY_KEEP:]
                record["StateUpdatedTimestamp"] = stamp
            record["StateValue"], record["StateReason"], record["EvaluatedAt"] = state_value, reason, iso(at)
            record["Periods"] = periods
            write_json_atomic(alarms_dir(state) / f"{_file_name(record['AlarmName'])}.json", record)
            results.append({"name": record["AlarmName"], "metric": definition["MetricName"], "state": state_value,
                            "previous": previous, "reason": reason, "changed": changed,
                            "threshold": definition.get("Threshold"), "comparison": definition["ComparisonOperator"]})
    return results
