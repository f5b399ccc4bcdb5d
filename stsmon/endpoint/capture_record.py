"""The data-capture record of the local endpoint: built from a request, parsed back. No files here.

One record per captured request, in SageMaker's shape (docs/CONTRACTS.md §2;
built by :mod:`stscontracts.records`, checked against
``stscontracts/schemas/capture-record.schema.json``)::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {...  "mode": "OUTPUT" ...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "sts_1",
                       "inferenceTime": "2026-11-27T12:00:00.123Z"},
     "eventVersion": "0"}

:class:`RecordEncoder` turns a :class:`CaptureEvent` (what the request path
hands over: raw bodies, a POSIX time) into that record and its line;
:func:`parse_line` and :func:`record_problems` read one back;
:func:`payload_body` gives a payload's bytes whatever its ``encoding``.
Where the lines go (hour files, flushing, durability) is
:mod:`stsmon.endpoint.capture`'s business.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from stscontracts import documents, records


@dataclass(slots=True)
class CaptureEvent:
    """What the request path hands to the writer: raw bodies, no encoding yet."""

    time: float
    inference_id: str | None
    input_type: str
    input_body: bytes
    output_type: str
    output_body: bytes


class RecordOptions(Protocol):
    """What the encoder needs to know (a :class:`stsmon.endpoint.capture.CaptureSettings` has it):
    which payloads to keep and the ``CaptureContentTypeHeader`` lists."""

    capture_input: bool
    capture_output: bool
    csv_content_types: tuple[str, ...]
    json_content_types: tuple[str, ...]


class CaptureRecordError(ValueError):
    """A line that is not a SageMaker capture record; ``problems`` says why (for people)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def format_time(t: float) -> str:
    """``2026-11-27T12:00:00.123Z`` (UTC, milliseconds) of a POSIX time."""
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class RecordEncoder:
    """Turns :class:`CaptureEvent` objects into SageMaker capture records and lines.

    A body whose media type is in ``csv_content_types``/``json_content_types``
    is stored as text with encoding ``CSV``/``JSON`` (when it is UTF-8);
    anything else as ``BASE64``, as SageMaker does.
    """

    def __init__(self, options: RecordOptions) -> None:
        self._csv = {_media_type(t) for t in options.csv_content_types}
        self._json = {_media_type(t) for t in options.json_content_types}
        self._input = options.capture_input
        self._output = options.capture_output

    def _payload(self, content_type: str, body: bytes, mode: str) -> dict[str, str]:
        media = _media_type(content_type)
        encoding = "CSV" if media in self._csv else "JSON" if media in self._json else "BASE64"
        if encoding != "BASE64":
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                encoding = "BASE64"
        if encoding == "BASE64":
            data = base64.b64encode(body).decode("ascii")
        return records.payload(content_type, mode, data, encoding)

    def record(self, event: CaptureEvent, event_id: str | None = None) -> dict[str, Any]:
        return records.capture_record(
            event_id=event_id or str(uuid.uuid4()),
            inference_time=format_time(event.time),
            inference_id=event.inference_id,
            endpoint_input=self._payload(event.input_type, event.input_body, "INPUT") if self._input else None,
            endpoint_output=self._payload(event.output_type, event.output_body, "OUTPUT") if self._output else None,
        )

    def line(self, event: CaptureEvent) -> bytes:
        """The record as one compact UTF-8 JSON line (keys in SageMaker's order, newline-terminated)."""
        return encode_line(self.record(event))


def encode_line(record: dict[str, Any]) -> bytes:
    """One record as a capture line: compact JSON, non-ASCII kept, ``\\n`` at the end."""
    return records.line(record).encode("utf-8")


def parse_line(line: bytes | str) -> dict[str, Any]:
    """One capture line back to its record.

    Raises :class:`CaptureRecordError`: ``["not JSON"]`` when the line does
    not parse, else what :func:`record_problems` found.
    """
    try:
        record = json.loads(line)
    except ValueError:
        raise CaptureRecordError(["not JSON"]) from None
    problems = record_problems(record)
    if problems:
        raise CaptureRecordError(problems)
    return record


def payload_body(part: dict[str, Any]) -> bytes:
    """The bytes of an ``endpointInput``/``endpointOutput`` payload (``BASE64`` decoded, text as UTF-8)."""
    if part["encoding"] == "BASE64":
        return base64.b64decode(part["data"], validate=True)
    return part["data"].encode("utf-8")


def record_problems(record: Any) -> list[str]:
    """What makes ``record`` not a SageMaker capture record (empty list: valid): the
    problems its JSON Schema finds (:func:`stscontracts.documents.problems`)."""
    return documents.problems(record, documents.CAPTURE_RECORD)
