"""The model-quality monitor: one window of captured predictions vs ground truth.

Runs as the monitoring pipeline's processing step (SageMaker scikit-learn
container) and, unchanged, under the local runtime. For a window of whole
hours it

1. reads the endpoint's data-capture records of the window's hours: with
   ``--capture-uri s3://bucket/{p}/datacapture/{endpoint}`` it lists and
   downloads just the ``{variant}/yyyy/mm/dd/hh/`` prefixes of those hours
   (boto3, ``--region``); with ``--capture-dir`` it reads the same layout
   from a folder (``{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``),
2. reads the ground-truth records (``--ground-truth-uri`` or
   ``--ground-truth-dir``, ``yyyy/mm/dd/hh/*.jsonl``) of the hours from the
   window start up to the hour of the execution time, at most the label
   delay + 1 hour past the window: labels arrive after the predictions, so
   with a label delay the hours between the window and the run are read too,
3. merges them on the capture's ``inferenceId`` (else its ``eventId``) =
   the label's ``eventMetadata.eventId``,
4. computes Model Monitor's model-quality metrics (binary classification or
   regression), compares them with the baseline's ``constraints.json``,
5. writes ``statistics.json``, ``constraint_violations.json``, ``report.html``,
   ``cloudwatch_metrics.json`` and ``monitoring_result.json`` into
   ``--output-dir`` (all or nothing), and with ``--publish-cloudwatch true``
   publishes the metrics with CloudWatch ``PutMetricData``.

What a run reads does not depend on how much history the bucket keeps: one
``ListObjectsV2`` (with ``Delimiter``) for the endpoint's variants, then per
variant and hour (and per label hour) one listing of that hour's prefix, and
one ``GetObject`` per file of those hours. The counts and bytes are in
``monitoring_result.json`` (``read``). Every boto3 client gets ``--region``
(the definition passes the stack's region): SageMaker does not document
``AWS_REGION`` in processing containers. Endpoints and credentials come from
boto3's own configuration (the container's role; locally the runtime's
``AWS_ENDPOINT_URL_S3``), so the code path is the same everywhere.

Status, as Model Monitor's: ``Completed``, ``CompletedWithViolations`` or
``Failed`` with a reason (no capture in the window, no labels, label coverage
below ``--min-label-coverage``). Exit codes:

- 0: Completed or CompletedWithViolations (violations are a result; their
  alarms watch the published metrics);
- 3: Failed. The outputs are written and the metrics published first
  (``monitoring_failed`` = 1), the reason goes to ``--exit-message-file``
  (SageMaker's ``/opt/ml/output/message``: ``ExitMessage`` of the processing
  job) and stderr, then the non-zero exit fails the job, the step and the
  pipeline execution, so SageMaker's ``ExecutionFailed`` metric counts it;
- 1: an AWS call failed (reading S3: nothing written; publishing: outputs
  written);
- 2: unusable arguments or baseline files (``error: ...``, nothing written).

Scale: parsing is columnar. Each capture/label file is scanned by one
compiled regular expression in C (``re.findall`` over the file's bytes) that
pulls out only the fields the merge needs and skips the request payload; the
extracted strings are unescaped by a single ``json.loads`` call per chunk, and
everything after that is numpy/pandas. Lines that do not have the documented
key order (or are malformed) fall back to ``json.loads`` one by one, with the
same result.

Standard library, numpy, pandas, scikit-learn; boto3 (in the scikit-learn
image: its requirements.txt pins boto3) only to read S3 and publish.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

try:  # imported as processing_scripts.monitor (tests, local runtime)
    from . import contract, monitor_report
except ImportError:  # run as a script next to its sibling modules (SageMaker)
    import contract  # type: ignore[no-redef]
    import monitor_report  # type: ignore[no-redef]

STATUS_COMPLETED = "Completed"
STATUS_VIOLATIONS = "CompletedWithViolations"
STATUS_FAILED = "Failed"

RESULT_FILE = "monitoring_result.json"
REPORT_FILE = "report.html"
CLOUDWATCH_FILE = "cloudwatch_metrics.json"

DEFAULT_NAMESPACE = "stsmodelmonitor"

#: Model Monitor's comparison operators; a violation is when the comparison holds.
COMPARISONS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}

#: Scalar metrics of each problem type (Model Monitor's names), in report order.
BINARY_METRICS = (
    "accuracy", "precision", "recall", "f1", "auc", "f0_5", "f2",
    "true_positive_rate", "true_negative_rate", "false_positive_rate", "false_negative_rate",
    "accuracy_best_constant_classifier", "precision_best_constant_classifier",
    "recall_best_constant_classifier", "f0_5_best_constant_classifier",
    "f1_best_constant_classifier", "f2_best_constant_classifier",
)
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2")
SCALAR_METRICS = {
    contract.BINARY_CLASSIFICATION: BINARY_METRICS,
    contract.REGRESSION: REGRESSION_METRICS,
}

#: Model Monitor reports a standard deviation only from this many matched records on.
MIN_ITEMS_FOR_STD = 200
STD_ROUNDS = 5
STD_FRACTION = 0.8
#: Points kept of the ROC and precision-recall curves in statistics.json.
CURVE_POINTS = 101
#: Lines per parsing chunk (bounds memory whatever the file sizes).
CHUNK_BYTES = 64 * 1024 * 1024

COUNT_KEYS = (
    "captured", "labelled", "matched", "unmatched_captures", "unmatched_labels",
    "duplicate_captures", "duplicate_labels", "malformed_capture_lines", "malformed_label_lines",
)


class MonitorError(Exception):
    """Unusable arguments or baseline: exit code 2, nothing written."""


class ReadFailed(Exception):
    """S3 could not be read (access, network, missing bucket): exit code 1, nothing written."""


# --------------------------------------------------------------------------- time window


_EPOCH = re.compile(r"^\d{9,}(?:\.\d+)?$")


def parse_time(value: str, name: str) -> datetime:
    """An instant as an aware UTC datetime.

    Accepts ISO-8601 (``T`` or a space between date and time, any fraction of
    a second, ``Z`` or an offset; a value without one is UTC) and epoch
    seconds or milliseconds (``1779012000.123``, ``1779012000123``).
    ``Execution.StartDateTime`` reaches the script as a string whose form
    SageMaker does not document: the service's own executions give ISO-8601
    UTC, the SageMaker SDK's local mode gives epoch seconds
    (sagemaker-mlops 1.27.0, ``local/pipeline_entities.py``); both parse.
    """
    text = value.strip()
    if _EPOCH.match(text):
        number = float(text)
        seconds = number / 1000.0 if number >= 1e11 else number  # 1e11 s is the year 5138: those are ms
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MonitorError(f"{name} {value!r} is not an ISO-8601 time (e.g. 2026-11-27T13:00:00Z) "
                           f"or epoch seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def compute_window(
    execution_time: datetime, window_end: str, window_hours: int, label_delay_hours: int
) -> tuple[datetime, datetime]:
    """The window ``[start, end)`` in whole UTC hours.

    ``window_end`` empty: the execution time floored to the hour, minus the
    label delay (so the default is the previous full hour). A given end is
    floored to the hour too, because capture folders are hourly.
    """
    if window_end.strip():
        end = floor_hour(parse_time(window_end, "--window-end"))
    else:
        end = floor_hour(execution_time) - timedelta(hours=label_delay_hours)
    return end - timedelta(hours=window_hours), end


def iso(moment: datetime) -> str:
    """``2026-11-27T13:00:00Z`` (milliseconds only when not zero)."""
    moment = moment.astimezone(timezone.utc)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- hour folders

_HOUR_PARTS = (re.compile(r"\d{4}"), re.compile(r"\d{2}"), re.compile(r"\d{2}"), re.compile(r"\d{2}"))


def hour_folders(root: Path) -> list[tuple[datetime, tuple[str, ...], Path]]:
    """Every ``yyyy/mm/dd/hh`` folder below ``root``: (hour, prefix parts, path), sorted.

    ``prefix parts`` are the folders between ``root`` and ``yyyy`` (for
    capture: endpoint and variant). Folders that look like dates but are not
    valid ones are ignored.
    """
    found = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, _ in os.walk(root):
        rel = Path(dirpath).relative_to(root).parts
        if len(rel) >= 4 and all(p.fullmatch(s) for p, s in zip(_HOUR_PARTS, rel[-4:])):
            dirnames[:] = []  # files of an hour live directly in it
            y, m, d, h = (int(s) for s in rel[-4:])
            try:
                hour = datetime(y, m, d, h, tzinfo=timezone.utc)
            except ValueError:
                continue
            found.append((hour, tuple(rel[:-4]), Path(dirpath)))
        else:
            dirnames.sort()
    found.sort(key=lambda item: (item[0], item[1]))
    return found


def files_in_hours(root: Path, start: datetime, end: datetime, *, endpoint: str | None = None) -> list[Path]:
    """``*.jsonl`` files of the hour folders with ``start <= hour < end``, in a stable order.

    ``endpoint`` (the endpoint name): when ``root`` is the capture root
    (``{endpoint}/{variant}/yyyy/...`` below it), only that endpoint's folders
    count; when it is one endpoint's folder (``{variant}/yyyy/...``) or one
    variant's, every hour folder does.
    """
    files: list[Path] = []
    for hour, prefix, folder in hour_folders(root):
        if not (start <= hour < end):
            continue
        if endpoint and len(prefix) >= 2 and prefix[-2] != endpoint:
            continue
        files.extend(sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(".jsonl")))
    return files


# --------------------------------------------------------------------------- S3: the window's hours only

#: Bytes per read of a GetObject body (the file is streamed to disk).
DOWNLOAD_CHUNK = 8 * 1024 * 1024


@dataclass
class ReadStats:
    """What one run read from S3 (monitoring_result.json ``read``)."""

    list_calls: int = 0
    get_calls: int = 0
    objects: int = 0
    bytes: int = 0
    prefixes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"list_calls": self.list_calls, "get_calls": self.get_calls, "objects": self.objects,
                "bytes": self.bytes, "prefixes": len(self.prefixes)}


def parse_s3_uri(uri: str, name: str) -> tuple[str, str]:
    """(bucket, key prefix ending with ``/`` or empty) of ``s3://bucket/prefix``."""
    text = uri.strip()
    if not text.startswith("s3://") or not text[5:].split("/", 1)[0]:
        raise MonitorError(f"{name} {uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = text[5:].partition("/")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


def hour_key(hour: datetime) -> str:
    """``yyyy/mm/dd/hh/`` of an hour (the capture and ground-truth layout, UTC)."""
    return hour.astimezone(timezone.utc).strftime("%Y/%m/%d/%H/")


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Every whole UTC hour ``h`` with ``start <= h < end``."""
    hour, out = floor_hour(start), []
    if hour < start:
        hour += timedelta(hours=1)
    while hour < end:
        out.append(hour)
        hour += timedelta(hours=1)
    return out


def list_objects(s3: Any, bucket: str, prefix: str, stats: ReadStats) -> list[tuple[str, int]]:
    """(key, size) of every object under ``prefix`` (ListObjectsV2, every page)."""
    found: list[tuple[str, int]] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    stats.prefixes.append(prefix)
    while True:
        page = s3.list_objects_v2(**request)
        stats.list_calls += 1
        found += [(item["Key"], int(item.get("Size", 0))) for item in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return found
        request["ContinuationToken"] = page["NextContinuationToken"]


def list_children(s3: Any, bucket: str, prefix: str, stats: ReadStats) -> list[str]:
    """The "folders" right below ``prefix`` (ListObjectsV2 with Delimiter, every page)."""
    found: list[str] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    stats.prefixes.append(prefix)
    while True:
        page = s3.list_objects_v2(**request)
        stats.list_calls += 1
        found += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
        if not page.get("IsTruncated"):
            return found
        request["ContinuationToken"] = page["NextContinuationToken"]


def download(s3: Any, bucket: str, key: str, dest: Path, stats: ReadStats) -> None:
    """One object to ``dest``, streamed (GetObject)."""
    response = s3.get_object(Bucket=bucket, Key=key)
    stats.get_calls += 1
    body = response["Body"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(dest, "wb") as handle:
        while True:
            block = body.read(DOWNLOAD_CHUNK)
            if not block:
                break
            handle.write(block)
            size += len(block)
    body.close()
    stats.objects += 1
    stats.bytes += size


def _download_hours(s3: Any, bucket: str, base: str, hours: Sequence[datetime], dest: Path, stats: ReadStats) -> None:
    """The ``*.jsonl`` objects of ``{base}yyyy/mm/dd/hh/`` for each hour, to ``dest/yyyy/mm/dd/hh/``."""
    for hour in hours:
        prefix = base + hour_key(hour)
        for key, _ in sorted(list_objects(s3, bucket, prefix, stats)):
            rest = key[len(prefix):]
            if not rest.endswith(".jsonl") or "/" in rest or rest.startswith("."):
                continue  # the reader takes the hour folder's own *.jsonl files only
            download(s3, bucket, key, dest / hour_key(hour) / rest, stats)


def download_window(
    s3: Any,
    *,
    capture_uri: str | None,
    ground_truth_uri: str | None,
    capture_hours: Sequence[datetime],
    label_hours: Sequence[datetime],
    dest: Path,
) -> tuple[Path | None, Path | None, ReadStats]:
    """Download the window's capture and label files; returns their local roots and what was read.

    ``capture_uri`` is one endpoint's capture prefix: its variants (the
    folders right below it) are listed once, then each variant's hours.
    Local layout: ``dest/capture/{variant}/yyyy/mm/dd/hh/``,
    ``dest/ground_truth/yyyy/mm/dd/hh/``.
    """
    stats = ReadStats()
    capture_root = label_root = None
    if capture_uri:
        bucket, base = parse_s3_uri(capture_uri, "--capture-uri")
        capture_root = dest / "capture"
        capture_root.mkdir(parents=True, exist_ok=True)
        for variant_prefix in list_children(s3, bucket, base, stats):
            variant = variant_prefix[len(base):].strip("/")
            _download_hours(s3, bucket, variant_prefix, capture_hours, capture_root / variant, stats)
    if ground_truth_uri:
        bucket, base = parse_s3_uri(ground_truth_uri, "--ground-truth-uri")
        label_root = dest / "ground_truth"
        label_root.mkdir(parents=True, exist_ok=True)
        _download_hours(s3, bucket, base, label_hours, label_root, stats)
    return capture_root, label_root, stats


def s3_client(region: str) -> Any:
    """The S3 client, in ``region`` (never the container's implicit default)."""
    import boto3  # in the scikit-learn image; imported late so reading folders needs no boto3

    s3 = boto3.client("s3", region_name=region)
    return s3


# --------------------------------------------------------------------------- columnar parsing

_S = rb"\s*"
_STR = rb'"((?:[^"\\]++|\\.)*+)"'  # a JSON string's content, still escaped
_PLAIN = rb'"([^"\\]*+)"'  # a JSON string with no escapes
_OBJ_SKIP = rb'\{(?:[^"{}]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+\}'  # a flat object, skipped

#: One capture record in SageMaker's key order (docs/CONTRACTS.md §2), or any other line.
CAPTURE_LINE = re.compile(
    rb"^[ \t]*(?:(\{)" + _S + rb'"captureData"' + _S + rb":" + _S + rb"\{"
    + rb"(?:" + _S + rb'"endpointInput"' + _S + rb":" + _S + _OBJ_SKIP + _S + rb",)?"  # absent: output-only capture
    + _S + rb'"endpointOutput"' + _S + rb":" + _S + rb"\{"
    + _S + rb'"observedContentType"' + _S + rb":" + _S + _PLAIN + _S + rb","
    + _S + rb'"mode"' + _S + rb":" + _S + rb'"OUTPUT"' + _S + rb","
    + _S + rb'"data"' + _S + rb":" + _S + _STR + _S + rb","
    + _S + rb'"encoding"' + _S + rb":" + _S + _PLAIN + _S + rb"\}" + _S + rb"\}" + _S + rb","
    + _S + rb'"eventMetadata"' + _S + rb":" + _S + rb"\{"
    + _S + rb'"eventId"' + _S + rb":" + _S + _PLAIN
    + rb"(?:" + _S + rb"," + _S + rb'"inferenceId"' + _S + rb":" + _S + _PLAIN + rb")?"
    + rb"(?:" + _S + rb"," + _S + rb'"inferenceTime"' + _S + rb":" + _S + rb'"[^"\\]*+"' + rb")?"
    + _S + rb"\}" + _S + rb"," + _S + rb'"eventVersion"' + _S + rb":" + _S + rb'"[^"\\]*+"'
    + _S + rb"\}[ \t\r]*|(.*))$",
    re.M,
)
# groups: 1 "{" (a record), 2 content type, 3 data, 4 encoding, 5 eventId, 6 inferenceId, 7 other line

#: One ground-truth record in the documented key order, or any other line.
LABEL_LINE = re.compile(
    rb"^[ \t]*(?:(\{)" + _S + rb'"groundTruthData"' + _S + rb":" + _S + rb"\{"
    + _S + rb'"data"' + _S + rb":" + _S + _STR + _S + rb","
    + _S + rb'"encoding"' + _S + rb":" + _S + _PLAIN + _S + rb"\}" + _S + rb","
    + _S + rb'"eventMetadata"' + _S + rb":" + _S + rb"\{" + _S + rb'"eventId"' + _S + rb":" + _S + _PLAIN
    + _S + rb"\}" + _S + rb"," + _S + rb'"eventVersion"' + _S + rb":" + _S + rb'"[^"\\]*+"'
    + _S + rb"\}[ \t\r]*|(.*))$",
    re.M,
)
# groups: 1 "{" (a record), 2 data, 3 encoding, 4 eventId, 5 other line


def _chunks(path: Path) -> Iterable[bytes]:
    """A file's bytes in pieces of about CHUNK_BYTES that end at a line break."""
    with open(path, "rb") as handle:
        rest = b""
        while True:
            block = handle.read(CHUNK_BYTES)
            if not block:
                if rest:
                    yield rest
                return
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                rest = block
                continue
            yield block[: cut + 1]
            rest = block[cut + 1 :]


def _columns(rows: list[tuple[bytes, ...]], width: int) -> list[np.ndarray]:
    """The regex groups of every line as object arrays, one per group (transposed in C)."""
    table = np.empty((len(rows), width), dtype=object)
    if rows:
        table[:] = rows
    return [table[:, i] for i in range(width)]


def _decode_plain(items: Sequence[bytes]) -> list[str]:
    """Escape-free JSON string contents (ids, content types) as str, in one C call."""
    if len(items) == 0:
        return []
    return b"\x00".join(items).decode("utf-8", "replace").split("\x00")


class _AllValid(list):
    """A list of decoded strings known to hold no None."""


def _unescape(items: Sequence[bytes]) -> list[str | None]:
    """Escaped JSON string contents as str: one ``json.loads`` for all, else one by one.

    An item that is not a valid JSON string body gives None.
    """
    if len(items) == 0:
        return _AllValid()
    try:
        return _AllValid(json.loads(b'["' + b'","'.join(items) + b'"]'))
    except (ValueError, UnicodeDecodeError):
        out: list[str | None] = []
        for item in items:  # rare path: some item has an invalid escape or bytes
            try:
                out.append(json.loads(b'"' + item + b'"'))
            except (ValueError, UnicodeDecodeError):
                out.append(None)
        return out


def _get(record: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def _capture_fields(line: bytes) -> tuple[str, str, str, str, str] | None:
    """Slow path: (content type, data, encoding, eventId, inferenceId) of a line, or None."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    output = _get(record, "captureData", "endpointOutput")
    meta = _get(record, "eventMetadata")
    if not isinstance(output, dict) or not isinstance(meta, dict):
        return None
    ct, data, enc = output.get("observedContentType"), output.get("data"), output.get("encoding")
    event_id, inference_id = meta.get("eventId"), meta.get("inferenceId") or ""
    if not all(isinstance(v, str) for v in (ct, data, enc, event_id, inference_id)):
        return None
    if not event_id and not inference_id:
        return None
    return ct, data, enc, event_id, inference_id


def _label_fields(line: bytes) -> tuple[str, str, str] | None:
    """Slow path: (data, encoding, eventId) of a ground-truth line, or None."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    data, enc = _get(record, "groundTruthData", "data"), _get(record, "groundTruthData", "encoding")
    event_id = _get(record, "eventMetadata", "eventId")
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        data = json.dumps(data)
    if not all(isinstance(v, str) for v in (data, enc, event_id)) or not event_id:
        return None
    return data, enc or "CSV", event_id


@dataclass
class Parsed:
    """Columns of the well-formed records of a set of files, in file/line order."""

    columns: dict[str, list]
    malformed: int = 0
    examples: list[str] = field(default_factory=list)

    def add_malformed(self, where: str, count: int = 1) -> None:
        self.malformed += count
        if len(self.examples) < 5:
            self.examples.append(where)


def read_captures(files: Sequence[Path]) -> tuple[pd.DataFrame, int, list[str]]:
    """Capture records: DataFrame(key, content_type, encoding, data), malformed count, examples.

    ``key`` is the inferenceId when the record has one, else the eventId.
    ``data`` is the endpoint output's text as captured (still BASE64 when so
    encoded). Blank lines are ignored; every other unusable line is malformed.
    """
    cols: dict[str, list] = {"key": [], "content_type": [], "encoding": [], "data": []}
    parsed = Parsed(cols)
    for path in files:
        for chunk in _chunks(path):
            rec, ct, data, enc, event_id, inference_id, other = _columns(CAPTURE_LINE.findall(chunk), 7)
            is_rec = rec.astype(bool)
            has_id = event_id.astype(bool) | inference_id.astype(bool)
            parsed.malformed += int(np.count_nonzero(is_rec & ~has_id))  # a record with no id at all
            good = is_rec & has_id
            others = [line for line in other[~is_rec] if line.strip()]  # the slow path's lines
            key = np.where(inference_id[good].astype(bool), inference_id[good], event_id[good])
            datas = _unescape(data[good])
            keys = _decode_plain(key)
            cts = _decode_plain(ct[good])
            encs = _decode_plain(enc[good])
            bad_escape = [] if isinstance(datas, _AllValid) else [i for i, d in enumerate(datas) if d is None]
            if bad_escape:
                parsed.add_malformed(f"{path}: data with an invalid escape", len(bad_escape))
                keep = [i for i, d in enumerate(datas) if d is not None]
                datas, keys, cts, encs = ([seq[i] for i in keep] for seq in (datas, keys, cts, encs))
            cols["key"] += keys
            cols["content_type"] += cts
            cols["encoding"] += encs
            cols["data"] += datas
            for line in others:  # other key order, or malformed
                fields = _capture_fields(line)
                if fields is None:
                    parsed.add_malformed(f"{path}: {line[:80].decode('utf-8', 'replace')!r}")
                    continue
                ct, data, enc, event_id, inference_id = fields
                cols["key"].append(inference_id or event_id)
                cols["content_type"].append(ct)
                cols["encoding"].append(enc)
                cols["data"].append(data)
    frame = pd.DataFrame(cols, dtype=object)
    return frame, parsed.malformed, parsed.examples


def read_labels(files: Sequence[Path]) -> tuple[pd.DataFrame, int, list[str]]:
    """Ground-truth records: DataFrame(key, encoding, data), malformed count, examples."""
    cols: dict[str, list] = {"key": [], "encoding": [], "data": []}
    parsed = Parsed(cols)
    for path in files:
        for chunk in _chunks(path):
            rec, data, enc, event_id, other = _columns(LABEL_LINE.findall(chunk), 5)
            is_rec = rec.astype(bool)
            has_id = event_id.astype(bool)
            parsed.malformed += int(np.count_nonzero(is_rec & ~has_id))  # an empty eventId
            good = is_rec & has_id
            others = [line for line in other[~is_rec] if line.strip()]  # the slow path's lines
            datas = _unescape(data[good])
            keys = _decode_plain(event_id[good])
            encs = _decode_plain(enc[good])
            bad_escape = [] if isinstance(datas, _AllValid) else [i for i, d in enumerate(datas) if d is None]
            if bad_escape:
                parsed.add_malformed(f"{path}: data with an invalid escape", len(bad_escape))
                keep = [i for i, d in enumerate(datas) if d is not None]
                datas, keys, encs = ([seq[i] for i in keep] for seq in (datas, keys, encs))
            cols["key"] += keys
            cols["encoding"] += encs
            cols["data"] += datas
            for line in others:
                fields = _label_fields(line)
                if fields is None:
                    parsed.add_malformed(f"{path}: {line[:80].decode('utf-8', 'replace')!r}")
                    continue
                data, enc, event_id = fields
                cols["key"].append(event_id)
                cols["encoding"].append(enc)
                cols["data"].append(data)
    frame = pd.DataFrame(cols, dtype=object)
    return frame, parsed.malformed, parsed.examples


# --------------------------------------------------------------------------- value decoding

_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_WS = r"[ \t\r\n]*"
_SEP = "\x00"  # joins the texts of many records for one regex pass (cannot occur in them: checked)


def _key(names: str) -> str:
    return rf'"(?:{names})"{_WS}:{_WS}"?({_NUMBER})"?'


def _one_key(names: str) -> str:
    """A lookahead that fails when the record names the key twice (two predictions)."""
    return rf'(?![^\x00]*?"(?:{names})"[^\x00]*?"(?:{names})")'


#: CSV output, one row: ``label,probability`` (or ``score``). Groups: first, second, other.
_CSV_ROW = re.compile(rf"(?:{_WS}({_NUMBER}){_WS}(?:,{_WS}({_NUMBER}){_WS})?|([^\x00]*))\x00")
#: JSON / JSON-lines output of a classifier, one prediction. Groups: label, probability, other.
_JSON_CLASSIFIER = re.compile(
    rf"(?=[^\x00]*?{_key('label|predicted_label')}){_one_key('label|predicted_label')}"
    rf"(?:(?=[^\x00]*?{_key('probability|score')}))?[^\x00]*\x00|([^\x00]*)\x00"
)
#: JSON / JSON-lines output of a regressor, one prediction. Groups: score, other.
_JSON_REGRESSOR = re.compile(
    rf"(?=[^\x00]*?{_key('score|prediction')}){_one_key('score|prediction')}[^\x00]*\x00|([^\x00]*)\x00"
)


def _scan(pattern: re.Pattern, texts: np.ndarray, width: int) -> np.ndarray:
    """One regex pass over all texts joined; an (n, width) object array of groups, one row per text."""
    n = len(texts)
    if n == 0:
        return np.zeros((0, width), dtype=object)
    joined = _SEP.join(texts.tolist()) + _SEP
    rows = pattern.findall(joined) if joined.count(_SEP) == n else None
    if rows is None or len(rows) != n:  # a text holds the separator itself: one by one (rare)
        rows = []
        for text in texts:
            found = pattern.findall(text + _SEP) if _SEP not in text else []
            rows.append(found[0] if len(found) == 1 else ("",) * (width - 1) + (text,))
    out = np.empty((n, width), dtype=object)
    out[:] = rows if width > 1 else [(r,) if isinstance(r, str) else r for r in rows]
    return out


def _numbers(items: np.ndarray) -> np.ndarray:
    """Strings to floats; empty or non-numeric -> NaN (vectorized, C)."""
    if len(items) == 0:
        return np.zeros(0)
    return pd.to_numeric(items, errors="coerce").astype(float)


def _texts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(decoded texts, ok mask): BASE64 items decoded (rare: no type our inference returns)."""
    data = frame["data"].to_numpy(dtype=object)
    ok = np.ones(len(data), bool)
    codes, uniques = pd.factorize(frame["encoding"].astype(object))
    base64_codes = [i for i, u in enumerate(uniques) if str(u).upper() == "BASE64"]
    if base64_codes:
        data = data.copy()
        for i in np.flatnonzero(np.isin(codes, base64_codes)):
            try:
                data[i] = base64.b64decode(data[i], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                data[i], ok[i] = "", False
    return data, ok


def decode_predictions(frame: pd.DataFrame, problem_type: str) -> pd.DataFrame:
    """Predictions out of the endpoint outputs, by observedContentType.

    Returns columns ``prediction`` (label 0/1, or the regression score),
    ``score`` (the positive-class probability; NaN when absent) and ``ok``.
    Output formats (docs/CONTRACTS.md §1): CSV ``label,probability`` (or
    ``score``), JSON ``{"predictions": [{"label", "probability"}]}`` (or
    ``{"score"}``), JSON lines. A record must hold exactly one prediction.
    """
    n = len(frame)
    prediction = np.full(n, np.nan)
    score = np.full(n, np.nan)
    if n == 0:
        return pd.DataFrame({"prediction": prediction, "score": score, "ok": np.zeros(0, bool)})
    texts, ok_text = _texts(frame)
    codes, uniques = pd.factorize(frame["content_type"].astype(object))
    json_codes = [i for i, u in enumerate(uniques) if "json" in str(u).split(";")[0].lower()]
    is_json = np.isin(codes, json_codes)

    csv_idx = np.flatnonzero(~is_json & ok_text)
    if len(csv_idx):
        groups = _scan(_CSV_ROW, texts[csv_idx], 3)
        first, second = _numbers(groups[:, 0]), _numbers(groups[:, 1])
        if problem_type == contract.REGRESSION:
            first = np.where(groups[:, 1].astype(bool), np.nan, first)  # one column: the score
        prediction[csv_idx], score[csv_idx] = first, second

    json_idx = np.flatnonzero(is_json & ok_text)
    if len(json_idx):
        if problem_type == contract.REGRESSION:
            groups = _scan(_JSON_REGRESSOR, texts[json_idx], 2)
            prediction[json_idx] = _numbers(groups[:, 0])
        else:
            groups = _scan(_JSON_CLASSIFIER, texts[json_idx], 3)
            prediction[json_idx], score[json_idx] = _numbers(groups[:, 0]), _numbers(groups[:, 1])

    ok = ~np.isnan(prediction)
    if problem_type == contract.BINARY_CLASSIFICATION:
        ok &= np.isin(prediction, (0.0, 1.0))
        ok &= np.isnan(score) | ((score >= 0) & (score <= 1))
    else:
        ok &= np.isfinite(prediction)
    return pd.DataFrame({"prediction": prediction, "score": score, "ok": ok})


def decode_labels(frame: pd.DataFrame, problem_type: str) -> tuple[np.ndarray, np.ndarray]:
    """(label values, ok mask) of ground-truth records: 0/1, or a finite real number.

    ``data`` "1", " 1 ", "1.0" and (JSON encoding) "\"1\"" are all the label 1.
    """
    if len(frame) == 0:
        return np.zeros(0), np.zeros(0, bool)
    texts, ok_text = _texts(frame)
    value = _numbers(texts)
    quoted = np.flatnonzero(np.isnan(value) & ok_text)
    if len(quoted):  # e.g. JSON-encoded "\"1\"": strip the quotes, one pass
        value[quoted] = _numbers(np.char.strip(texts[quoted].astype(str), ' \t\r\n"').astype(object))
    ok = np.isfinite(value) & ok_text
    if problem_type == contract.BINARY_CLASSIFICATION:
        ok &= np.isin(value, (0.0, 1.0))
    return value, ok


# --------------------------------------------------------------------------- metrics


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    den = b2 * precision + recall
    return (1 + b2) * precision * recall / den if den else 0.0


def binary_point_metrics(y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None) -> dict[str, float]:
    """Scalar binary-classification metrics (positive class 1), Model Monitor's names.

    Undefined ratios (e.g. precision with no positive prediction) are 0, as
    scikit-learn's ``zero_division=0``; AUC is NaN without scores for every
    record or without both classes.
    """
    y_true = y_true.astype(bool)
    y_pred = y_pred.astype(bool)
    n = len(y_true)
    tp = int(np.count_nonzero(y_true & y_pred))
    fp = int(np.count_nonzero(~y_true & y_pred))
    fn = int(np.count_nonzero(y_true & ~y_pred))
    tn = n - tp - fp - fn
    precision, recall = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
    positives = tp + fn
    # Model Monitor's best constant classifier predicts the positive class for every record.
    const_precision, const_recall = _safe_div(positives, n), 1.0 if positives else 0.0
    metrics = {
        "accuracy": _safe_div(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "f1": _fbeta(precision, recall, 1.0),
        "f0_5": _fbeta(precision, recall, 0.5),
        "f2": _fbeta(precision, recall, 2.0),
        "true_positive_rate": recall,
        "true_negative_rate": _safe_div(tn, tn + fp),
        "false_positive_rate": _safe_div(fp, fp + tn),
        "false_negative_rate": _safe_div(fn, fn + tp),
        "accuracy_best_constant_classifier": _safe_div(positives, n),
        "precision_best_constant_classifier": const_precision,
        "recall_best_constant_classifier": const_recall,
        "f0_5_best_constant_classifier": _fbeta(const_precision, const_recall, 0.5),
        "f1_best_constant_classifier": _fbeta(const_precision, const_recall, 1.0),
        "f2_best_constant_classifier": _fbeta(const_precision, const_recall, 2.0),
        "auc": float("nan"),
    }
    if score is not None and len(score) and not np.isnan(score).any() and 0 < positives < n:
        from sklearn.metrics import roc_auc_score

        metrics["auc"] = float(roc_auc_score(y_true, score))
    return metrics


def regression_point_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """mae, mse, rmse, r2 (r2 is NaN when the labels are constant)."""
    err = y_pred - y_true
    mse = float(np.mean(err * err))
    var = float(np.var(y_true))
    return {
        "mae": float(np.mean(np.abs(err))),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": 1.0 - mse / var if var > 0 else float("nan"),
    }


def _point_metrics(problem_type: str, y_true, y_pred, score) -> dict[str, float]:
    if problem_type == contract.BINARY_CLASSIFICATION:
        return binary_point_metrics(y_true, y_pred, score)
    return regression_point_metrics(y_true, y_pred)


def _json_number(value: float) -> float | str:
    """Model Monitor writes non-finite numbers as the string "NaN"."""
    return value if math.isfinite(value) else "NaN"


def _downsample(*arrays: np.ndarray) -> list[list[float]]:
    n = len(arrays[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int)) if n else []
    return [[float(round(a[i], 6)) for i in idx] for a in arrays]


def compute_statistics(
    problem_type: str, y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None, *, seed: int = 0
) -> dict[str, Any]:
    """Model Monitor's ``<problem>_metrics`` block: each metric ``{value, standard_deviation}``.

    The standard deviation comes, as in Model Monitor, from 5 random 80 %
    subsamples (seeded) when at least 200 records matched, else "NaN".
    """
    n = len(y_true)
    point = _point_metrics(problem_type, y_true, y_pred, score)
    std = {name: float("nan") for name in point}
    if n >= MIN_ITEMS_FOR_STD:
        rng = np.random.default_rng(seed)
        size = int(n * STD_FRACTION)
        rounds = []
        for _ in range(STD_ROUNDS):
            idx = rng.choice(n, size=size, replace=False)
            rounds.append(_point_metrics(problem_type, y_true[idx], y_pred[idx], None if score is None else score[idx]))
        for name in point:
            values = np.array([r[name] for r in rounds], float)
            std[name] = float(np.std(values)) if np.isfinite(values).all() else float("nan")
    block: dict[str, Any] = {}
    if problem_type == contract.BINARY_CLASSIFICATION:
        t, p = y_true.astype(bool), y_pred.astype(bool)
        block["confusion_matrix"] = {  # actual label -> predicted label -> count
            "0": {"0": int(np.count_nonzero(~t & ~p)), "1": int(np.count_nonzero(~t & p))},
            "1": {"0": int(np.count_nonzero(t & ~p)), "1": int(np.count_nonzero(t & p))},
        }
    for name in SCALAR_METRICS[problem_type]:
        block[name] = {"value": _json_number(point[name]), "standard_deviation": _json_number(std[name])}
    if problem_type == contract.BINARY_CLASSIFICATION and math.isfinite(point["auc"]):
        from sklearn.metrics import precision_recall_curve, roc_curve

        fpr, tpr, _ = roc_curve(y_true.astype(int), score)
        prec, rec, _ = precision_recall_curve(y_true.astype(int), score)
        fpr_s, tpr_s = _downsample(fpr, tpr)
        prec_s, rec_s = _downsample(prec, rec)
        block["receiver_operating_characteristic_curve"] = {"false_positive_rates": fpr_s, "true_positive_rates": tpr_s}
        block["precision_recall_curve"] = {"precisions": prec_s, "recalls": rec_s}
    return block


# --------------------------------------------------------------------------- baseline


@dataclass(frozen=True)
class Baseline:
    problem_type: str
    constraints: dict[str, dict[str, Any]]  # metric -> {threshold, comparison_operator}
    statistics: dict[str, Any] | None  # the baseline's metrics block, when statistics.json exists


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MonitorError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MonitorError(f"{path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MonitorError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None


def load_baseline(baseline_dir: Path, problem_type: str = "auto") -> Baseline:
    """Read and check ``constraints.json`` (+ ``statistics.json`` if present)."""
    path = baseline_dir / contract.CONSTRAINTS_FILE
    if not path.is_file():
        found = sorted(p.name for p in baseline_dir.iterdir()) if baseline_dir.is_dir() else []
        raise MonitorError(
            f"no {contract.CONSTRAINTS_FILE} in the baseline folder {baseline_dir} (found: {', '.join(found) or 'nothing'})"
        )
    body = _load_json(path)
    if not isinstance(body, dict):
        raise MonitorError(f"{path}: expected a JSON object")
    present = [pt for pt, key in contract.CONSTRAINTS_KEY.items() if key in body]
    if problem_type == "auto":
        if len(present) != 1:
            keys = " or ".join(contract.CONSTRAINTS_KEY.values())
            raise MonitorError(f"{path}: expected exactly one of {keys}, found {len(present)}")
        problem_type = present[0]
    elif problem_type not in present:
        raise MonitorError(
            f"{path}: --problem-type {problem_type} needs {contract.CONSTRAINTS_KEY[problem_type]!r}, "
            f"the file has {', '.join(contract.CONSTRAINTS_KEY[p] for p in present) or 'neither'}"
        )
    key = contract.CONSTRAINTS_KEY[problem_type]
    raw = body[key]
    if not isinstance(raw, dict):
        raise MonitorError(f"{path}: {key} must be an object of metric -> constraint")
    constraints: dict[str, dict[str, Any]] = {}
    for metric, spec in raw.items():
        where = f"{path}: {key}.{metric}"
        if metric not in SCALAR_METRICS[problem_type]:
            raise MonitorError(f"{where}: unknown metric (known: {', '.join(SCALAR_METRICS[problem_type])})")
        if not isinstance(spec, dict):
            raise MonitorError(f"{where}: expected {{threshold, comparison_operator}}")
        op, threshold = spec.get("comparison_operator"), spec.get("threshold")
        if op not in COMPARISONS:
            raise MonitorError(f"{where}: comparison_operator {op!r} is not one of {', '.join(COMPARISONS)}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise MonitorError(f"{where}: threshold {threshold!r} is not a number")
        constraints[metric] = {"threshold": float(threshold), "comparison_operator": op}
    statistics = None
    stats_path = baseline_dir / contract.STATISTICS_FILE
    if stats_path.is_file():
        stats_body = _load_json(stats_path)
        block = stats_body.get(contract.METRICS_KEY[problem_type]) if isinstance(stats_body, dict) else None
        statistics = block if isinstance(block, dict) else None
    return Baseline(problem_type, constraints, statistics)


def check_constraints(constraints: dict[str, dict[str, Any]], metrics: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(violations, checks): Model Monitor's violation records, and every check made."""
    violations, checks = [], []
    for metric, spec in constraints.items():
        raw = metrics.get(metric, {}).get("value", "NaN")
        value = float(raw) if not isinstance(raw, str) else float("nan")
        op, threshold = spec["comparison_operator"], spec["threshold"]
        if not math.isfinite(value):
            checks.append({"metric_name": metric, "value": "NaN", "threshold": threshold,
                           "comparison_operator": op, "status": "NotEvaluated",
                           "reason": "the metric is undefined for this window"})
            continue
        violated = COMPARISONS[op](value, threshold)
        checks.append({"metric_name": metric, "value": value, "threshold": threshold,
                       "comparison_operator": op, "status": "Violation" if violated else "OK"})
        if violated:
            violations.append({
                "metric_name": metric,
                "constraint_check_type": op,
                "description": f"Metric {metric} with {value:.6g} was {op} {threshold:.6g}",
            })
    return violations, checks


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class Settings:
    capture_dir: Path | None
    ground_truth_dir: Path | None
    baseline_dir: Path
    output_dir: Path
    execution_time: datetime
    window_start: datetime
    window_end: datetime
    endpoint_name: str
    schedule_name: str
    namespace: str
    publish_cloudwatch: bool
    min_label_coverage: float
    problem_type: str
    capture_uri: str = ""
    ground_truth_uri: str = ""
    region: str = ""
    download_dir: Path | None = None
    label_delay_hours: int = 0
    exit_message_file: Path | None = None

    @property
    def label_end(self) -> datetime:
        """End of the label hours: labels are read from the window start up to the end of the
        execution's hour, and no further than the label delay (+1 h) past the window.

        For the default window (ending at the execution's hour minus the delay)
        both bounds are the same; for a given ``--window-end`` long before the
        run (a backfill), the second keeps the hours read to
        ``window + delay + 1``, whatever the time since.
        """
        latest = min(floor_hour(self.execution_time), self.window_end + timedelta(hours=self.label_delay_hours))
        return max(self.window_end, latest + timedelta(hours=1))


def run_monitor(settings: Settings, baseline: Baseline, read: ReadStats | None = None) -> dict[str, Any]:
    """Compute the window's result from local folders (no files written): monitoring_result.json's content.

    The returned dict also carries ``_statistics`` (statistics.json's content)
    for the writer. ``read``: what was downloaded from S3 for it, if anything.
    """
    problem_type = baseline.problem_type
    capture_files = files_in_hours(
        settings.capture_dir, settings.window_start, settings.window_end, endpoint=settings.endpoint_name or None
    ) if settings.capture_dir else []
    label_files = files_in_hours(
        settings.ground_truth_dir, settings.window_start, settings.label_end
    ) if settings.ground_truth_dir else []

    captures, malformed_captures, capture_examples = read_captures(capture_files)
    predictions = decode_predictions(captures, problem_type)
    ok = predictions["ok"].to_numpy()
    malformed_captures += int((~ok).sum())
    if (~ok).any():
        capture_examples += [f"unusable prediction {d!r} ({c})" for d, c in
                             zip(captures["data"][~ok][:3], captures["content_type"][~ok][:3])]
    cap = pd.DataFrame({
        "key": captures["key"].to_numpy()[ok],
        "prediction": predictions["prediction"].to_numpy()[ok],
        "score": predictions["score"].to_numpy()[ok],
    })
    dup_cap = cap["key"].duplicated(keep="first")
    duplicate_captures = int(dup_cap.sum())
    cap = cap[~dup_cap.to_numpy()]

    labels_raw, malformed_labels, label_examples = read_labels(label_files)
    label_values, label_ok = decode_labels(labels_raw, problem_type)
    malformed_labels += int((~label_ok).sum())
    if (~label_ok).any():
        label_examples += [f"unusable label {d!r}" for d in labels_raw["data"][~label_ok][:3]]
    lab = pd.DataFrame({"key": labels_raw["key"].to_numpy()[label_ok], "label": label_values[label_ok]})
    dup_lab = lab["key"].duplicated(keep="last")  # a later label corrects an earlier one
    duplicate_labels = int(dup_lab.sum())
    lab = lab[~dup_lab.to_numpy()]

    merged = cap.merge(lab, on="key", how="inner", sort=False)
    counts = {
        "captured": len(cap),
        "labelled": len(lab),
        "matched": len(merged),
        "unmatched_captures": len(cap) - len(merged),
        "unmatched_labels": len(lab) - len(merged),
        "duplicate_captures": duplicate_captures,
        "duplicate_labels": duplicate_labels,
        "malformed_capture_lines": malformed_captures,
        "malformed_label_lines": malformed_labels,
    }
    coverage = counts["matched"] / counts["captured"] if counts["captured"] else 0.0

    metrics_block: dict[str, Any] = {}
    if len(merged):
        y_true = merged["label"].to_numpy(float)
        y_pred = merged["prediction"].to_numpy(float)
        score = merged["score"].to_numpy(float)
        if problem_type == contract.BINARY_CLASSIFICATION and np.isnan(score).any():
            score = None
        metrics_block = compute_statistics(problem_type, y_true, y_pred, score)

    window = f"[{iso(settings.window_start)}, {iso(settings.window_end)})"
    failure_reason = ""
    if counts["captured"] == 0:
        failure_reason = (f"no capture records in the window {window} "
                          f"({len(capture_files)} capture files, {malformed_captures} malformed lines)")
    elif counts["matched"] == 0:
        failure_reason = (f"none of the {counts['captured']} captured records in the window {window} has a "
                          f"ground-truth label ({counts['labelled']} labels read, none for these ids)")
    elif coverage < settings.min_label_coverage:
        failure_reason = (f"label coverage {coverage:.3f} ({counts['matched']} of {counts['captured']} captured "
                          f"records labelled) is below the minimum {settings.min_label_coverage:g}")

    violations: list[dict] = []
    checks: list[dict] = []
    if not failure_reason:
        violations, checks = check_constraints(baseline.constraints, metrics_block)
        status = STATUS_VIOLATIONS if violations else STATUS_COMPLETED
    else:
        status = STATUS_FAILED

    scalar = {name: metrics_block[name]["value"] for name in SCALAR_METRICS[problem_type] if name in metrics_block}
    statistics = {
        "version": 0.0,
        "dataset": {"item_count": counts["matched"], "evaluation_time": iso(settings.execution_time)},
        contract.METRICS_KEY[problem_type]: metrics_block,
    }
    return {
        "status": status,
        "failure_reason": failure_reason,
        "problem_type": problem_type,
        "execution_time": iso(settings.execution_time),
        "window": {"start": iso(settings.window_start), "end": iso(settings.window_end)},
        "endpoint_name": settings.endpoint_name,
        "schedule_name": settings.schedule_name,
        "counts": counts,
        "label_coverage": round(coverage, 6),
        "min_label_coverage": settings.min_label_coverage,
        "metrics": scalar,
        "confusion_matrix": metrics_block.get("confusion_matrix"),
        "constraints": baseline.constraints,
        "checks": checks,
        "violations": violations,
        "files": {"capture": len(capture_files), "ground_truth": len(label_files)},
        "read": read.as_dict() if read is not None else None,
        "malformed_examples": {"capture": capture_examples[:5], "ground_truth": label_examples[:5]},
        "_statistics": statistics,
        "_baseline_statistics": baseline.statistics,
    }


def cloudwatch_payload(result: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """PutMetricData input: Model Monitor's metric names, dimensions Endpoint and MonitoringSchedule.

    Count metrics are always there (so a no-data hour is visible); the
    quality metrics only when the status is not Failed. Timestamp: the window end.
    """
    dims = [{"Name": "Endpoint", "Value": settings.endpoint_name},
            {"Name": "MonitoringSchedule", "Value": settings.schedule_name}]
    stamp = result["window"]["end"]
    data = []
    counts = result["counts"]
    for name, value, unit in (
        ("captured_records", counts["captured"], "Count"),
        ("labelled_records", counts["labelled"], "Count"),
        ("matched_records", counts["matched"], "Count"),
        ("label_coverage", result["label_coverage"], "None"),
        ("constraint_violations", len(result["violations"]), "Count"),
        ("monitoring_failed", 1 if result["status"] == STATUS_FAILED else 0, "Count"),
    ):
        data.append({"MetricName": name, "Timestamp": stamp, "Dimensions": dims, "Value": float(value), "Unit": unit})
    if result["status"] != STATUS_FAILED:
        for name, value in result["metrics"].items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                data.append({"MetricName": name, "Timestamp": stamp, "Dimensions": dims,
                             "Value": float(value), "Unit": "None"})
    return {"Namespace": settings.namespace, "MetricData": data}


def publish_cloudwatch(payload: dict[str, Any], cloudwatch: Any = None, *, region: str = "") -> int:
    """PutMetricData in batches of 20; returns the number of data points sent.

    Without a client, one is made in ``region``.
    """
    if cloudwatch is None:
        import boto3  # only on AWS

        cloudwatch = boto3.client("cloudwatch", region_name=region)
    data = [dict(d, Timestamp=parse_time(d["Timestamp"], "Timestamp")) for d in payload["MetricData"]]
    for i in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace=payload["Namespace"], MetricData=data[i : i + 20])
    return len(data)


def write_outputs(result: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write every output file, all or nothing; returns monitoring_result.json's content."""
    statistics = result.pop("_statistics")
    baseline_statistics = result.pop("_baseline_statistics")
    payload = cloudwatch_payload(result, settings)
    html = monitor_report.render_html(result, statistics, baseline_statistics)
    files = {
        contract.STATISTICS_FILE: json.dumps(statistics, indent=2),
        contract.VIOLATIONS_FILE: json.dumps({"violations": result["violations"]}, indent=2),
        CLOUDWATCH_FILE: json.dumps(payload, indent=2),
        REPORT_FILE: html,
        RESULT_FILE: json.dumps(result, indent=2),
    }
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".monitor-", dir=settings.output_dir))
    try:
        for name, text in files.items():
            (staging / name).write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
        for name in files:  # the result file last: its presence means the set is complete
            os.replace(staging / name, settings.output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- command line


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _int_arg(minimum: int):
    def parse(value: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return parse


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value!r}")
    return number


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2, like every step script
        raise MonitorError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description="Model-quality monitor for one window of captured predictions and ground truth.")
    p.add_argument("--capture-uri", default="",
                   help="s3://bucket/{p}/datacapture/{endpoint}: the window's {variant}/yyyy/mm/dd/hh/ prefixes are "
                        "listed and downloaded (needs --region)")
    p.add_argument("--ground-truth-uri", default="",
                   help="s3://bucket/{p}/ground-truth: the label hours' yyyy/mm/dd/hh/ prefixes are listed and "
                        "downloaded (needs --region)")
    p.add_argument("--capture-dir", type=Path, default=None,
                   help="instead of --capture-uri, a folder: {endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl, "
                        "searched recursively")
    p.add_argument("--ground-truth-dir", type=Path, default=None,
                   help="instead of --ground-truth-uri, a folder: yyyy/mm/dd/hh/*.jsonl")
    p.add_argument("--download-dir", type=Path, default=Path("/opt/ml/processing/window"),
                   help="where the window's S3 objects are downloaded (removed after the run)")
    p.add_argument("--region", default="", help="AWS region of every client (S3, CloudWatch)")
    p.add_argument("--baseline-dir", type=Path, default=Path("/opt/ml/processing/input/baseline"),
                   help="constraints.json (+ statistics.json if present)")
    p.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    p.add_argument("--exit-message-file", type=Path, default=Path("/opt/ml/output/message"),
                   help="on a Failed result the reason is written here (SageMaker: the job's ExitMessage)")
    p.add_argument("--execution-time", default="", help="ISO-8601; default now (UTC)")
    p.add_argument("--window-end", default="",
                   help='ISO-8601, floored to the hour; "" = execution time floored to the hour minus the label delay')
    p.add_argument("--window-hours", type=_int_arg(1), default=1)
    p.add_argument("--label-delay-hours", type=_int_arg(0), default=0)
    p.add_argument("--endpoint-name", default="", help="CloudWatch dimension Endpoint")
    p.add_argument("--schedule-name", default="", help="CloudWatch dimension MonitoringSchedule")
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="CloudWatch namespace")
    p.add_argument("--publish-cloudwatch", type=_bool, default=False)
    p.add_argument("--min-label-coverage", type=_fraction, default=0.0)
    p.add_argument("--problem-type", choices=("auto",) + contract.PROBLEM_TYPES, default="auto")
    return p


def settings_from_args(argv: Sequence[str] | None, now: datetime) -> Settings:
    """Settings from the command line; without ``--execution-time`` the window is taken from ``now``."""
    args = build_parser().parse_args(argv)
    execution_time = (
        parse_time(args.execution_time, "--execution-time") if args.execution_time.strip() else now
    )
    start, end = compute_window(execution_time, args.window_end, args.window_hours, args.label_delay_hours)
    if not args.namespace.strip():
        raise MonitorError("--namespace must not be empty")
    for uri, folder, what in ((args.capture_uri, args.capture_dir, "capture"),
                              (args.ground_truth_uri, args.ground_truth_dir, "ground-truth")):
        if bool(uri.strip()) == (folder is not None):
            raise MonitorError(f"give exactly one of --{what}-uri (S3) and --{what}-dir (a folder)")
        if uri.strip():
            parse_s3_uri(uri, f"--{what}-uri")
    if (args.capture_uri.strip() or args.ground_truth_uri.strip() or args.publish_cloudwatch) and not args.region.strip():
        raise MonitorError("--region is required to read S3 (--capture-uri, --ground-truth-uri) or publish to "
                           "CloudWatch: every client is made in the stack's region, not the container's default")
    return Settings(
        capture_dir=args.capture_dir,
        ground_truth_dir=args.ground_truth_dir,
        baseline_dir=args.baseline_dir,
        output_dir=args.output_dir,
        execution_time=execution_time,
        window_start=start,
        window_end=end,
        endpoint_name=args.endpoint_name,
        schedule_name=args.schedule_name,
        namespace=args.namespace,
        publish_cloudwatch=args.publish_cloudwatch,
        min_label_coverage=args.min_label_coverage,
        problem_type=args.problem_type,
        capture_uri=args.capture_uri.strip(),
        ground_truth_uri=args.ground_truth_uri.strip(),
        region=args.region.strip(),
        download_dir=args.download_dir,
        label_delay_hours=args.label_delay_hours,
        exit_message_file=args.exit_message_file,
    )


def run_window(settings: Settings, baseline: Baseline) -> dict[str, Any]:
    """The window's result; S3 inputs are downloaded (the window's hours only) and removed afterwards."""
    if not (settings.capture_uri or settings.ground_truth_uri):
        return run_monitor(settings, baseline)
    from botocore.exceptions import BotoCoreError, ClientError

    dest = Path(tempfile.mkdtemp(prefix="window-", dir=_made(settings.download_dir)))
    try:
        try:
            capture_root, label_root, stats = download_window(
                s3_client(settings.region),
                capture_uri=settings.capture_uri,
                ground_truth_uri=settings.ground_truth_uri,
                capture_hours=hours_between(settings.window_start, settings.window_end),
                label_hours=hours_between(settings.window_start, settings.label_end),
                dest=dest,
            )
        except (BotoCoreError, ClientError) as exc:
            raise ReadFailed(f"reading the window from S3 ({settings.capture_uri or '-'}, "
                             f"{settings.ground_truth_uri or '-'}) failed: {type(exc).__name__}: {exc}") from None
        local = replace(settings,
                        capture_dir=capture_root if settings.capture_uri else settings.capture_dir,
                        ground_truth_dir=label_root if settings.ground_truth_uri else settings.ground_truth_dir)
        return run_monitor(local, baseline, stats)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _made(folder: Path | None) -> Path:
    path = folder or Path(tempfile.gettempdir())
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = settings_from_args(argv, now=datetime.now(timezone.utc))  # the program's entry: its clock
        baseline = load_baseline(settings.baseline_dir, settings.problem_type)
        if settings.publish_cloudwatch and not (settings.endpoint_name and settings.schedule_name):
            raise MonitorError("--publish-cloudwatch true needs --endpoint-name and --schedule-name (the dimensions)")
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        computed = run_window(settings, baseline)
    except ReadFailed as exc:
        write_exit_message(settings.exit_message_file, str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = write_outputs(computed, settings)
    counts = result["counts"]
    print(f"{result['status']}: window {result['window']['start']} .. {result['window']['end']}, "
          + ", ".join(f"{k} {counts[k]}" for k in COUNT_KEYS))
    if result.get("read"):
        read = result["read"]
        print(f"read from S3: {read['objects']} objects, {read['bytes']} bytes "
              f"({read['list_calls']} list calls over {read['prefixes']} prefixes)")
    if result["failure_reason"]:
        print(f"reason: {result['failure_reason']}")
    for v in result["violations"]:
        print(f"violation: {v['description']}")
    if settings.publish_cloudwatch:
        payload = json.loads((settings.output_dir / CLOUDWATCH_FILE).read_text(encoding="utf-8"))
        try:
            sent = publish_cloudwatch(payload, region=settings.region)
        except Exception as exc:  # botocore's errors share no base class worth naming here
            # The outputs are written and complete; the job fails so the pipeline shows it.
            message = (f"publishing to CloudWatch namespace {settings.namespace} failed: {type(exc).__name__}: {exc}"
                       + (f"; the window's result: Failed: {result['failure_reason']}" if result["failure_reason"] else ""))
            write_exit_message(settings.exit_message_file, message)
            print(f"error: {message}", file=sys.stderr)
            return 1
        print(f"published {sent} metric data points to CloudWatch namespace {settings.namespace}")
    if result["status"] == STATUS_FAILED:
        # A Failed window fails the job (after its outputs and metrics): the pipeline execution
        # fails, SageMaker counts it in ExecutionFailed, the alarms on it fire.
        message = f"{contract.MONITOR_FAILED_PREFIX}{result['failure_reason']}"
        write_exit_message(settings.exit_message_file, message)
        print(message, file=sys.stderr)
        return EXIT_FAILED
    return 0


#: Exit code of a Failed result (outputs written, metrics published).
EXIT_FAILED = 3
#: SageMaker keeps the first 1 KB of /opt/ml/output/message as the job's ExitMessage.
EXIT_MESSAGE_BYTES = 1024


def write_exit_message(path: Path | None, message: str) -> None:
    """The reason a job fails, where SageMaker reads it (``ExitMessage``: UTF-8, first 1 KB).

    Best effort: a folder that cannot be written must not hide the failure
    itself, which stderr and the exit code carry anyway.
    """
    if path is None:
        return
    data = message.encode("utf-8")[:EXIT_MESSAGE_BYTES].decode("utf-8", "ignore")  # never cut a character
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data, encoding="utf-8")
    except OSError as exc:
        print(f"warning: could not write the exit message to {path}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
