"""SageMaker's data-capture and ground-truth record shapes (docs/CONTRACTS.md §2).

The shapes are built by :mod:`stscontracts.records`; here, writers and
readers used by ``stsmon ground-truth``, the tests and the benchmark. The monitor job itself (``processing_scripts/monitor.py``) has its
own columnar reader; these are the small-scale, record-at-a-time versions.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from stscontracts import records

_HOUR_DIR = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})$")


def capture_record(
    *,
    event_id: str,
    inference_time: datetime,
    output: str,
    output_type: str = "text/csv",
    input_data: str = "",
    input_type: str = "text/csv",
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One data-capture record (:func:`stscontracts.records.capture_record`) with both parts,
    each encoded as the default capture settings would (``CSV`` for text/csv, ``JSON`` for
    JSON types, else ``BASE64``: ``data`` is then taken as already base64)."""
    def part(content_type: str, mode: str, data: str) -> dict[str, str]:
        encoding = "CSV" if content_type == "text/csv" else "JSON" if "json" in content_type else "BASE64"
        return records.payload(content_type, mode, data, encoding)

    return records.capture_record(
        event_id=event_id, inference_time=records.inference_time(inference_time), inference_id=inference_id,
        endpoint_input=part(input_type, "INPUT", input_data), endpoint_output=part(output_type, "OUTPUT", output))


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records one per line, atomically (temp name, then rename). Returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


@dataclass(frozen=True)
class CapturedInference:
    """What ``stsmon ground-truth`` needs of a capture record."""

    key: str  # inferenceId, else eventId: the ground truth's eventId
    inference_id: str | None
    event_id: str
    inference_time: str
    output: str
    output_type: str
    input: str = ""  # captureData.endpointInput.data, as captured (see input_encoding)
    input_type: str = ""
    input_encoding: str = ""


def hour_of_folder(folder: str) -> datetime | None:
    match = _HOUR_DIR.search(folder.replace(os.sep, "/"))
    if not match:
        return None
    try:
        return datetime(*(int(g) for g in match.groups()), tzinfo=timezone.utc)
    except ValueError:
        return None


def iter_capture_lines(lines: Iterable[str], where: str) -> Iterator[CapturedInference]:
    """Parse capture lines; malformed ones are skipped (the monitor counts them)."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
            meta = record["eventMetadata"]
            out = record["captureData"]["endpointOutput"]
            event_id = meta["eventId"]
            given = record["captureData"].get("endpointInput") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        inference_id = meta.get("inferenceId") or None
        yield CapturedInference(
            key=inference_id or event_id,
            inference_id=inference_id,
            event_id=event_id,
            inference_time=meta.get("inferenceTime", ""),
            output=out.get("data", ""),
            output_type=out.get("observedContentType", ""),
            input=given.get("data", "") if isinstance(given, dict) else "",
            input_type=given.get("observedContentType", "") if isinstance(given, dict) else "",
            input_encoding=given.get("encoding", "") if isinstance(given, dict) else "",
        )
