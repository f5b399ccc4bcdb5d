"""Ground-truth labels for captured inferences (what ``stsmon ground-truth`` does).

For the captured inferences of a window it writes one ground-truth record
per inference (docs/CONTRACTS.md §2) into
``{ground truth uri}/yyyy/mm/dd/hh/{name}.jsonl`` — the hour the labels are
written (labels arrive after predictions; the monitor reads label hours from
the window start up to its run), or with ``label_hour`` another hour.

Modes:

- ``true``: the true labels, from the traffic record that ``stsmon traffic``
  wrote (inference id -> label of the test split);
- ``noise``: the true labels with seeded noise at ``error_rate``: that share
  of labels is flipped (classification) or replaced by another record's
  label (regression) — the drift drill that must raise violations;
- ``random``: labels drawn at random, seeded per inference id, like the
  original ``gen_fake_ground_truth.py`` (positive with ``positive_rate``;
  regression: uniform over ``label_range``).

Capture is read and labels are written through an S3 client
(``list_objects_v2`` / ``get_object`` / ``put_object``): boto3's for
``--target aws``, the local runtime's over the local buckets otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stscontracts import names, records

from ..errors import StsmonError, UsageError
from ..state import StateDir
from .records import CapturedInference, iter_capture_lines

MODES = ("true", "noise", "random")


@dataclass
class LabelPlan:
    """What will be written: (key, label) pairs and how they came about."""

    labels: list[tuple[str, Any]]
    mode: str
    captured: int
    without_truth: list[str] = field(default_factory=list)  # captured ids the traffic record does not know
    changed: int = 0  # labels differing from the truth (noise)


@dataclass(frozen=True)
class Truth:
    """True labels by inference id, from a traffic record."""

    labels: dict[str, Any]
    problem_type: str
    source: str


def _label_value(raw: Any, where: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise StsmonError(f"{where}: label {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise StsmonError(f"{where}: label {raw!r} is not a finite number")
    return value


def read_truth(path: Path) -> Truth:
    """True labels from a traffic record (``runs/traffic-*.json`` or ``testendpoint_out.json``).

    Accepted shapes: ``{"inferences": [{"inference_id", "label"}, ...]}``
    (also ``records`` / ``items``, keys ``inferenceId`` / ``id`` and
    ``true_label`` / ``expected``), or a plain ``{inference id: label}`` map.
    """
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StsmonError(f"cannot read the traffic record {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise StsmonError(f"the traffic record {path} is not JSON: {exc}") from None
    items: Iterable[Any] | None = None
    if isinstance(body, dict):
        for key in ("inferences", "records", "items"):
            if isinstance(body.get(key), list):
                items = body[key]
                break
    labels: dict[str, Any] = {}
    if items is not None:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise StsmonError(f"{path}: inference {i} is not an object")
            key = item.get("inference_id") or item.get("inferenceId") or item.get("id")
            raw = next((item[k] for k in ("label", "true_label", "expected", "ground_truth") if k in item), None)
            if key is None or raw is None:
                continue  # an inference without a label (e.g. a failed request)
            labels[str(key)] = _label_value(raw, f"{path}: inference {key}")
    elif isinstance(body, dict) and body and all(not isinstance(v, (dict, list)) for v in body.values()):
        labels = {str(k): _label_value(v, f"{path}: inference {k}") for k, v in body.items()}
    if not labels:
        raise StsmonError(f"{path}: no inference ids with true labels found (expected an 'inferences' list "
                          f"of {{inference_id, label}})")
    problem = body.get("problem_type") if isinstance(body, dict) else None
    if problem not in (names.BINARY_CLASSIFICATION, names.REGRESSION):
        problem = names.BINARY_CLASSIFICATION if set(labels.values()) <= {0.0, 1.0} else names.REGRESSION
    return Truth(labels, problem, str(path))


def latest_traffic_record(state: StateDir) -> Path:
    """The newest ``runs/traffic-*.json``, else ``./testendpoint_out.json``."""
    candidates = sorted(state.runs.glob("traffic-*.json"), key=lambda p: p.stat().st_mtime) if state.runs.is_dir() else []
    if candidates:
        return candidates[-1]
    legacy = Path("testendpoint_out.json")
    if legacy.is_file():
        return legacy
    raise StsmonError(f"no traffic record in {state.runs} (traffic-*.json) or ./testendpoint_out.json: run "
                      f"`stsmon traffic` first, or pass --traffic-record, or use --mode random")


def _seeded(seed: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def plan_labels(
    captured: list[CapturedInference],
    mode: str,
    *,
    truth: Truth | None = None,
    error_rate: float = 0.3,
    seed: int = 0,
    positive_rate: float = 0.7,
    problem_type: str | None = None,
    label_range: tuple[float, float] = (0.0, 5.0),
) -> LabelPlan:
    """Labels for the captured inferences, deterministic for a seed.

    Whether a record's label is made wrong (noise) or what it is (random)
    depends on (seed, its id) alone, so the same inference gets the same
    treatment whatever else is in the window.
    """
    if mode not in MODES:
        raise UsageError(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    if not 0.0 <= error_rate <= 1.0:
        raise UsageError(f"--error-rate {error_rate} must be between 0 and 1")
    keys = list(dict.fromkeys(c.key for c in captured))  # unique, capture order
    plan = LabelPlan(labels=[], mode=mode, captured=len(keys))
    if mode == "random":
        kind = problem_type or (truth.problem_type if truth else names.BINARY_CLASSIFICATION)
        for key in keys:
            rng = _seeded(seed, key)
            if kind == names.BINARY_CLASSIFICATION:
                plan.labels.append((key, 1 if rng.random() < positive_rate else 0))
            else:
                plan.labels.append((key, round(rng.uniform(*label_range), 3)))
        return plan
    if truth is None:
        raise UsageError(f"--mode {mode} needs the true labels: a traffic record (stsmon traffic writes one)")
    known = [k for k in keys if k in truth.labels]
    plan.without_truth = [k for k in keys if k not in truth.labels]
    values = [truth.labels[k] for k in known]
    # Wrong labels for graded scores are drawn from the window's true labels in
    # id order, so the draw does not depend on the order requests were captured in.
    pool = [truth.labels[k] for k in sorted(known)]
    for i, key in enumerate(known):
        label = values[i]
        if mode == "noise":
            rng = _seeded(seed, key)
            if rng.random() < error_rate:
                if truth.problem_type == names.BINARY_CLASSIFICATION:
                    label = 1.0 - label
                else:
                    label = pool[rng.randrange(len(pool))] if len(pool) > 1 else label
                plan.changed += int(label != values[i])
        plan.labels.append((key, int(label) if truth.problem_type == names.BINARY_CLASSIFICATION else label))
    return plan


def _file_name(now: datetime) -> str:
    return f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"


def _records_text(labels: list[tuple[str, Any]]) -> str:
    return "".join(json.dumps(records.ground_truth_record(k, v)) + "\n" for k, v in labels)


# -------------------------------------------------------------------------------- S3 (either target)


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UsageError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def read_captures(s3: Any, capture_uri: str, endpoint: str, start: datetime, end: datetime) -> list[CapturedInference]:
    """Capture records of the window's hour folders in S3 (``{capture uri}/{endpoint}/{variant}/yyyy/mm/dd/hh/``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split(capture_uri.rstrip("/") + "/" + endpoint + "/")
    found: list[CapturedInference] = []
    try:
        variants = [p["Prefix"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/") for p in page.get("CommonPrefixes", [])]
        hour = start
        keys: list[str] = []
        while hour < end:
            for variant in variants:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{variant}{names.hour_prefix(hour)}/"):
                    keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl"))
            hour += timedelta(hours=1)
        for key in sorted(keys):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
            found.extend(iter_capture_lines(body.splitlines(), f"s3://{bucket}/{key}"))
    except (ClientError, BotoCoreError) as exc:
        raise StsmonError(f"reading capture from s3://{bucket}/{prefix} failed: {exc}") from None
    return found


def write_labels(s3: Any, ground_truth_uri: str, labels: list[tuple[str, Any]], hour: datetime,
             now: datetime, kms_key_id: str | None = None) -> str:
    """Upload one labels file (named by ``now``; SSE-KMS when a key is given); returns its s3:// URI."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split(ground_truth_uri.rstrip("/") + "/")
    key = f"{prefix}{names.hour_prefix(hour)}/{_file_name(now)}"
    extra: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=_records_text(labels).encode("utf-8"),
                      ContentType="application/jsonlines", **extra)
    except (ClientError, BotoCoreError) as exc:
        raise StsmonError(f"writing ground truth to s3://{bucket}/{key} failed: {exc}") from None
    return f"s3://{bucket}/{key}"


def hour_window(window: str, now: datetime) -> tuple[datetime, datetime]:
    """Capture hours to label: ``current`` (default), ``previous``, ``all`` (the last 7 days), END, START/END."""
    from .runs import window_parameters

    floor = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    text = (window or "current").strip()
    if text == "current":
        return floor, floor + timedelta(hours=1)
    if text == "previous":
        return floor - timedelta(hours=1), floor
    if text == "all":
        return floor - timedelta(days=7), floor + timedelta(hours=1)
    params = window_parameters(text, now)
    end = datetime.fromisoformat(params["WindowEnd"].replace("Z", "+00:00"))
    return end - timedelta(hours=int(params.get("WindowHours", "1"))), end


def summary_lines(plan: LabelPlan, where: str, truth: Truth | None) -> list[str]:
    lines = [f"wrote {len(plan.labels)} ground-truth labels ({plan.mode}) for {plan.captured} captured inferences to {where}"]
    if truth is not None and plan.mode != "random":
        lines.append(f"true labels from {truth.source}")
    if plan.mode == "noise":
        share = plan.changed / len(plan.labels) if plan.labels else 0.0
        lines.append(f"noise: {plan.changed} labels ({share:.1%}) differ from the truth")
    if plan.without_truth:
        lines.append(f"{len(plan.without_truth)} captured inferences are not in the traffic record and got no label "
                     f"(e.g. {', '.join(plan.without_truth[:3])})")
    return lines
