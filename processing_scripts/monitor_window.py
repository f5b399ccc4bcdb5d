"""The monitor's window: its time bounds and where its records are.

Time: the window ``[start, end)`` in whole UTC hours, parsed from the
arguments SageMaker passes (``Execution.StartDateTime``) or given. Files: the
``yyyy/mm/dd/hh/*.jsonl`` hour folders of a local root (tests, benchmarks),
or the window's hour prefixes of an S3 URI, listed and downloaded (one
``ListObjectsV2`` with ``Delimiter`` for the endpoint's variants, then per
variant and hour one listing, and one ``GetObject`` per file; the counts are
:class:`ReadStats`).

Standard library; boto3 (in the scikit-learn image) only for S3.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from stscontracts import names


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
    return names.hour_prefix(hour) + "/"


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
