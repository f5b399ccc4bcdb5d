"""The capture record format on its own: build, line, parse — no files, no writer."""

from __future__ import annotations

import calendar
from dataclasses import dataclass

import pytest

from stsmon.endpoint.capture_record import (
    CaptureEvent,
    CaptureRecordError,
    RecordEncoder,
    format_time,
    parse_line,
    payload_body,
)

T0 = calendar.timegm((2033, 5, 17, 12, 0, 0)) + 0.517


@dataclass(frozen=True)
class Options:
    capture_input: bool = True
    capture_output: bool = True
    csv_content_types: tuple[str, ...] = ("text/csv",)
    json_content_types: tuple[str, ...] = ("application/json", "application/jsonlines")


@pytest.mark.parametrize("event", [
    CaptureEvent(T0, "sts_1", "text/csv", b"a,b\n", "text/csv", b"1,0.9\n"),
    CaptureEvent(T0, None, "application/json", '{"s": "caf\u00e9 \u2014 ok"}'.encode(), "application/jsonlines", b'{"label": 1}\n'),
    CaptureEvent(T0, "sts_2", "text/csv", b"caf\xe9,x\n", "application/x-npy", b"\x00\xff\x93NUMPY"),  # not UTF-8: BASE64
])
def test_an_event_survives_the_line_round_trip(event):
    """What the writer puts on a line is what a reader gets back: bodies byte for byte,
    content types, the inference id (absent stays absent), the time to the millisecond."""
    line = RecordEncoder(Options()).line(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    record = parse_line(line)
    inp, out = record["captureData"]["endpointInput"], record["captureData"]["endpointOutput"]
    assert (payload_body(inp), inp["observedContentType"]) == (event.input_body, event.input_type)
    assert (payload_body(out), out["observedContentType"]) == (event.output_body, event.output_type)
    assert record["eventMetadata"].get("inferenceId") == event.inference_id
    assert record["eventMetadata"]["inferenceTime"] == "2033-05-17T12:00:00.517Z" == format_time(event.time)
    assert record["eventVersion"] == "0"


def test_without_content_type_lists_every_body_is_base64_and_still_round_trips():
    """SageMaker stores a body base64 when its type is in neither CaptureContentTypeHeader list."""
    event = CaptureEvent(T0, "x", "text/csv", b"a,b\n", "text/csv", b"1\n")
    record = parse_line(RecordEncoder(Options(csv_content_types=(), json_content_types=())).line(event))
    parts = record["captureData"]
    assert [p["encoding"] for p in parts.values()] == ["BASE64", "BASE64"]
    assert payload_body(parts["endpointInput"]) == b"a,b\n"


@pytest.mark.parametrize("line, problem", [
    (b"{not json", "not JSON"),
    (b"[]", "(the document): [] is not of type 'object'"),
    (b'{"captureData": {}, "eventMetadata": {"eventId": "e", "inferenceTime": "tZ"}, "eventVersion": "0"}',
     "captureData: {} should be non-empty"),
    (b'{"captureData": {"endpointOutput": {"mode": "OUTPUT", "data": "1", "encoding": "CSV", "observedContentType": "text/csv"}},'
     b' "eventMetadata": {"eventId": "e", "inferenceTime": "2033-05-17T12:00:00"}, "eventVersion": "0"}',
     "eventMetadata.inferenceTime: '2033-05-17T12:00:00' is not a UTC time in ISO-8601 form ending in Z"),
])
def test_parse_line_names_what_is_wrong(line, problem):
    """The record's JSON Schema (stscontracts/schemas/capture-record.schema.json) names the path and the problem."""
    with pytest.raises(CaptureRecordError) as caught:
        parse_line(line)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
