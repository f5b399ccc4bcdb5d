"""Labelled pairs of the last monitoring windows: what the endpoint was asked, with the labels that came later.

For ``stsmon model compare``: the newest ``N`` monitoring windows whose
result matched labels (``counts.matched`` > 0 in ``monitoring_result.json``)
are read back from S3 through the clients — the window's capture records
(``captureData.endpointInput``: the sentence pair as it was sent) and the
ground truth of the hours the monitor reads for it (the window's start to its
end plus ``MONITOR_LABEL_DELAY_HOURS``), matched as the monitor matches them
(``inferenceId``, else ``eventId``; a newer label of an id replaces an older
one; of a window's captures with the same id the first counts, the others are
duplicates). Requests that carried more than one pair, or whose input cannot be read,
are left out and counted.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from stscontracts import names

from ..errors import StsmonError


@dataclass
class WindowPairs:
    """The labelled pairs of the windows read, and what was left out."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    windows: list[dict[str, str]] = field(default_factory=list)
    skipped: int = 0
    duplicates: int = 0
    note: str = ""


def _pair(record: Any) -> tuple[str, str] | None:
    """The one sentence pair of a captured request (CSV or JSON, as the endpoint accepts them), else None."""
    data = record.input
    if record.input_encoding.upper() == "BASE64":
        try:
            data = base64.b64decode(data).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    kind = record.input_type.split(";")[0].strip().lower()
    rows: list[Any]
    if kind == "text/csv":
        rows = [r for r in csv.reader(io.StringIO(data)) if r]
    elif kind in ("application/json", "application/jsonlines"):
        try:
            body = [json.loads(line) for line in data.splitlines() if line.strip()] if kind.endswith("lines") \
                else json.loads(data)
        except ValueError:
            return None
        if isinstance(body, dict):
            body = body.get("instances", [])
        rows = [[r.get("sentence1"), r.get("sentence2")] if isinstance(r, dict) else r for r in body]
    else:
        return None
    if len(rows) != 1 or len(rows[0]) != 2 or not all(isinstance(x, str) for x in rows[0]):
        return None
    return rows[0][0], rows[0][1]


def _labels(s3: Any, ground_truth_uri: str, start: datetime, end: datetime) -> dict[str, float]:
    """eventId -> label of the ground-truth hours [start, end) (files in name order; a newer label replaces)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = ground_truth_uri[len("s3://"):].rstrip("/").partition("/")
    labels: dict[str, float] = {}
    hour = start
    try:
        while hour < end:
            keys = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{prefix}/{names.hour_prefix(hour)}/") for o in page.get("Contents", []))
            for key in keys:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
                for line in body.splitlines():
                    try:
                        record = json.loads(line)
                        labels[str(record["eventMetadata"]["eventId"])] = float(record["groundTruthData"]["data"])
                    except (ValueError, KeyError, TypeError):
                        continue
            hour += timedelta(hours=1)
    except (ClientError, BotoCoreError) as exc:
        raise StsmonError(f"reading ground truth from {ground_truth_uri} failed: {exc}") from None
    return labels


def _join(records: Any, labels: dict[str, float], found: WindowPairs) -> None:
    """Add one window's labelled pairs to ``found``, matched as the monitor matches them.

    Of the window's captures with the same id the first counts (the monitor's
    rule, ``monitor_records.match``); the others are counted as duplicates.
    """
    keys: set[str] = set()
    for record in records:
        if record.key in keys:
            found.duplicates += 1
            continue
        keys.add(record.key)
        label = labels.get(record.key)
        if label is None:
            continue
        pair = _pair(record)
        if pair is None:
            found.skipped += 1
            continue
        found.pairs.append(pair)
        found.labels.append(label)


def labelled_windows(clients: Any, count: int) -> WindowPairs:
    """The labelled pairs of the newest ``count`` monitoring windows that matched labels (see the module doc)."""
    from ..clients.stacks import deployed_outputs
    from ..monitoring.ground_truth import read_captures
    from ..monitoring.metrics import parse_time
    from ..monitoring.runs import list_runs

    found = WindowPairs()
    if count <= 0:
        return found
    outputs = deployed_outputs(clients)
    needed = ("MonitoringPipelineName", "MonitoringOutputUri", "DataCaptureUri", "EndpointName", "GroundTruthUri")
    if not all(outputs.get(k) for k in needed):
        found.note = "no monitoring deployed"
        return found
    seen: set[tuple[str, str]] = set()
    windows = []
    for run in reversed(list_runs(clients, outputs["MonitoringPipelineName"], output_uri=outputs["MonitoringOutputUri"],
                                  limit=100)):
        result = run.result or {}
        window = result.get("window") or {}
        key = (window.get("start", ""), window.get("end", ""))
        if (result.get("counts") or {}).get("matched", 0) > 0 and all(key) and key not in seen:
            seen.add(key)
            windows.append(window)
        if len(windows) == count:
            break
    if not windows:
        found.note = "no monitoring window has labels yet"
        return found
    delay = timedelta(hours=clients.config.monitor_label_delay_hours)
    for window in windows:
        start, end = parse_time(window["start"]), parse_time(window["end"])
        labels = _labels(clients.s3, outputs["GroundTruthUri"], start, end + delay)
        _join(read_captures(clients.s3, outputs["DataCaptureUri"], outputs["EndpointName"], start, end), labels, found)
        found.windows.append({"start": window["start"], "end": window["end"]})
    return found
