"""SageMaker's data-capture and ground-truth records, built in one place.

The shapes, key for key and in SageMaker's key order (docs/CONTRACTS.md §2;
their JSON Schemas are ``schemas/capture-record.schema.json`` and
``schemas/ground-truth-record.schema.json``)::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {...  "mode": "OUTPUT" ...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "sts_1",
                       "inferenceTime": "2026-11-27T12:00:00.123Z"},
     "eventVersion": "0"}

    {"groundTruthData": {"data": "1", "encoding": "CSV"},
     "eventMetadata": {"eventId": "sts_1"}, "eventVersion": "0"}

The local endpoint's capture writer, ``stsmon ground-truth``, the synthetic
windows of the tests and benchmarks all build their records with these
functions; the monitor job reads them. Which ``encoding`` a body gets is the
writer's business (the endpoint's ``CaptureContentTypeHeader``), not this
module's. Standard library only.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

EVENT_VERSION = "0"
#: The ``encoding`` values SageMaker writes.
ENCODINGS = ("CSV", "JSON", "BASE64")
#: ``captureData`` key -> the ``mode`` its payload carries.
PAYLOAD_MODES = {"endpointInput": "INPUT", "endpointOutput": "OUTPUT"}


def inference_time(moment: datetime) -> str:
    """``2026-11-27T12:00:00.123Z``: SageMaker's ``inferenceTime`` (UTC, milliseconds)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def payload(content_type: str, mode: str, data: str, encoding: str) -> dict[str, str]:
    """One ``endpointInput``/``endpointOutput`` part (``mode`` ``INPUT`` or ``OUTPUT``)."""
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_record(
    *,
    event_id: str,
    inference_time: str,
    inference_id: str | None = None,
    endpoint_input: dict[str, str] | None = None,
    endpoint_output: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One data-capture record. ``inference_time`` is already in SageMaker's form
    (:func:`inference_time`); a part that is None is left out (capture of input or
    output only); ``inferenceId`` only when the client sent one."""
    capture: dict[str, Any] = {}
    if endpoint_input is not None:
        capture["endpointInput"] = endpoint_input
    if endpoint_output is not None:
        capture["endpointOutput"] = endpoint_output
    meta: dict[str, str] = {"eventId": event_id}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    meta["inferenceTime"] = inference_time
    return {"captureData": capture, "eventMetadata": meta, "eventVersion": EVENT_VERSION}


def ground_truth_record(event_id: str, label: str | int | float) -> dict[str, Any]:
    """One ground-truth record: ``eventId`` is the capture's inferenceId (else its eventId);
    a whole-number float label is written as an integer (``1.0`` -> ``"1"``)."""
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    return {
        "groundTruthData": {"data": str(label), "encoding": "CSV"},
        "eventMetadata": {"eventId": event_id},
        "eventVersion": EVENT_VERSION,
    }


def line(record: dict[str, Any]) -> str:
    """A record as one line of a capture or ground-truth file: compact JSON, non-ASCII kept, ``\\n`` at the end."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
