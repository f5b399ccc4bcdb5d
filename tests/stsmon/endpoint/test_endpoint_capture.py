"""Data capture: SageMaker's record shape and file layout, the writer's guarantees, the reader."""

from __future__ import annotations

import base64
import calendar
import errno
import json
import re
import time
from pathlib import Path

import pytest

from stsmon.endpoint import capture as cap
from stsmon.endpoint.capture import CaptureSettings, CaptureWriter, scan_capture, settings_from_data_capture_config
from stsmon.endpoint.capture_record import CaptureEvent, RecordEncoder, record_problems

T0 = calendar.timegm((2026, 11, 27, 12, 0, 0)) + 0.123
FILE_NAME = re.compile(r"^\d{2}-\d{2}-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl$")


def event(t=T0, inference_id="sts_1", body=b"a,b\n", ctype="text/csv", out=b"1,0.9\n", out_type="text/csv"):
    return CaptureEvent(t, inference_id, ctype, body, out_type, out)


def settings(tmp_path, **kw) -> CaptureSettings:
    return CaptureSettings(folder=tmp_path / "capture", **kw)


def test_record_is_sagemakers_shape(tmp_path):
    rec = RecordEncoder(settings(tmp_path)).record(event(), event_id="e-1")
    assert rec == {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "a,b\n", "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "1,0.9\n", "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": "e-1", "inferenceId": "sts_1", "inferenceTime": "2026-11-27T12:00:00.123Z"},
        "eventVersion": "0",
    }
    assert record_problems(rec) == []
    # The line is compact JSON with the keys in SageMaker's order.
    line = RecordEncoder(settings(tmp_path)).line(event())
    assert line.endswith(b"\n") and line.startswith(b'{"captureData":{"endpointInput":{"observedContentType"')


def test_encodings_follow_the_content_type_lists(tmp_path):
    enc = RecordEncoder(settings(tmp_path))
    rec = enc.record(event(body=b'{"instances": []}', ctype="application/json; charset=utf-8",
                           out=b"\x00\xff", out_type="application/x-npy"))
    assert rec["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert rec["captureData"]["endpointInput"]["observedContentType"] == "application/json; charset=utf-8"
    out = rec["captureData"]["endpointOutput"]
    assert out["encoding"] == "BASE64" and base64.b64decode(out["data"]) == b"\x00\xff"
    # A CSV content type whose bytes are not UTF-8 is kept exactly, as base64.
    rec = enc.record(event(body=b"caf\xe9,x\n"))
    assert rec["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(rec["captureData"]["endpointInput"]["data"]) == b"caf\xe9,x\n"


def test_no_inference_id_means_no_field(tmp_path):
    rec = RecordEncoder(settings(tmp_path)).record(event(inference_id=None))
    assert "inferenceId" not in rec["eventMetadata"]
    assert record_problems(rec) == []


def test_capture_modes_input_or_output_only(tmp_path):
    only_in = RecordEncoder(settings(tmp_path, capture_output=False)).record(event())
    assert list(only_in["captureData"]) == ["endpointInput"]
    only_out = RecordEncoder(settings(tmp_path, capture_input=False)).record(event())
    assert list(only_out["captureData"]) == ["endpointOutput"]


def test_settings_from_a_data_capture_config(tmp_path):
    def folder(uri):
        return tmp_path / uri.removeprefix("s3://")

    cfg = {
        "EnableCapture": "true",
        "InitialSamplingPercentage": "20",
        "DestinationS3Uri": "s3://bucket/sts/datacapture",
        "KmsKeyId": "arn:aws:kms:us-east-1:000000000000:key/x",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
    }
    s = settings_from_data_capture_config(cfg, folder)
    assert s.folder == tmp_path / "bucket/sts/datacapture"
    assert s.sampling_percentage == 20 and s.capture_input and s.capture_output
    assert s.csv_content_types == ("text/csv",) and s.json_content_types == ("application/json",)
    assert settings_from_data_capture_config({**cfg, "EnableCapture": False}, folder) is None
    only_input = settings_from_data_capture_config({**cfg, "CaptureOptions": [{"CaptureMode": "Input"}]}, folder)
    assert only_input.capture_input and not only_input.capture_output
    # Without CaptureContentTypeHeader SageMaker stores every body base64-encoded.
    no_header = {k: v for k, v in cfg.items() if k != "CaptureContentTypeHeader"}
    rec = RecordEncoder(settings_from_data_capture_config(no_header, folder)).record(event())
    assert rec["captureData"]["endpointInput"]["encoding"] == "BASE64"


@pytest.mark.parametrize("bad", [{"InitialSamplingPercentage": 101}, {"CaptureOptions": [{"CaptureMode": "All"}]},
                                 {"DestinationS3Uri": ""}, {"EnableCapture": "maybe"}])
def test_bad_data_capture_configs_are_refused(tmp_path, bad):
    cfg = {"DestinationS3Uri": "s3://b/p", **bad}
    with pytest.raises(ValueError):
        settings_from_data_capture_config(cfg, lambda uri: tmp_path)


def test_writer_layout_one_record_per_event_and_hour_rotation(tmp_path):
    s = settings(tmp_path)
    writer = CaptureWriter(s, "ep", stats_path=tmp_path / "stats.json").start()
    events = [event(t=T0 + i * 0.01, inference_id=f"sts_{i}") for i in range(50)]
    late = [event(t=T0 + 3600 + i, inference_id=f"late_{i}") for i in range(3)]  # the next hour
    for ev in events + late:
        writer.submit(ev)
    stats = writer.close()
    assert stats.written == 53 and stats.dropped == 0 and stats.files == 2
    files = sorted((tmp_path / "capture").rglob("*.jsonl"))
    rel = [f.relative_to(tmp_path / "capture").parts for f in files]
    assert [r[:6] for r in rel] == [("ep", "AllTraffic", "2026", "11", "27", "12"),
                                    ("ep", "AllTraffic", "2026", "11", "27", "13")]
    assert all(FILE_NAME.match(r[6]) for r in rel)
    assert rel[0][6].startswith("00-00-123-")  # mm-ss-mmm of its first record
    scan = scan_capture(tmp_path / "capture")
    assert scan.bad_lines == 0 and scan.incomplete_last_lines == 0
    ids = [r["eventMetadata"]["inferenceId"] for r in scan.records]
    assert sorted(ids) == sorted([f"sts_{i}" for i in range(50)] + [f"late_{i}" for i in range(3)])
    assert len({r["eventMetadata"]["eventId"] for r in scan.records}) == 53
    assert json.loads((tmp_path / "stats.json").read_text())["written"] == 53


def test_writer_flushes_within_the_interval_without_close(tmp_path):
    writer = CaptureWriter(settings(tmp_path, flush_interval=0.1), "ep").start()
    try:
        writer.submit(event(t=time.time()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not scan_capture(tmp_path / "capture").records:
            time.sleep(0.05)
        assert len(scan_capture(tmp_path / "capture").records) == 1
    finally:
        writer.close()


def test_a_failed_write_is_taken_back_counted_and_serving_goes_on(tmp_path, monkeypatch):
    writer = CaptureWriter(settings(tmp_path), "ep")
    writer.submit(event(inference_id="before"))
    writer.flush()
    real_write = cap.os.write
    calls = {"n": 0}

    def full_disk(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:  # half the chunk lands, then the disk is full
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cap.os, "write", full_disk)
    for i in range(5):
        writer.submit(event(inference_id=f"lost_{i}"))
    writer.flush()
    assert writer.stats.dropped == 5 and writer.stats.drop_reasons == {"disk full": 5}
    monkeypatch.setattr(cap.os, "write", real_write)
    writer.submit(event(inference_id="after"))
    writer.close()
    scan = scan_capture(tmp_path / "capture")
    # The half-written chunk was truncated away: whole lines only.
    assert scan.bad_lines == 0 and scan.incomplete_last_lines == 0
    assert [r["eventMetadata"]["inferenceId"] for r in scan.records] == ["before", "after"]
    assert writer.stats.written == 2


def test_a_full_buffer_drops_and_counts_instead_of_growing(tmp_path):
    writer = CaptureWriter(settings(tmp_path), "ep", max_pending=3)
    for i in range(10):
        writer.submit(event(inference_id=f"x{i}"))
    stats = writer.close()
    assert stats.written == 3 and stats.dropped == 7 and stats.drop_reasons == {"buffer full": 7}


def test_reader_skips_and_counts_an_incomplete_last_line_and_bad_lines(tmp_path):
    folder = tmp_path / "ep" / "AllTraffic" / "2026" / "11" / "27" / "12"
    folder.mkdir(parents=True)
    good = RecordEncoder(settings(tmp_path)).line(event()).decode()
    (folder / "a.jsonl").write_text(good + good + good[: len(good) // 2])
    (folder / "b.jsonl").write_text(good + "not json\n" + json.dumps({"eventVersion": "0"}) + "\n")
    scan = scan_capture(tmp_path)
    assert len(scan.records) == 3
    assert scan.incomplete_last_lines == 1
    assert scan.bad_lines == 2 and len(scan.problems) == 2
    assert any("b.jsonl:2: not JSON" in p for p in scan.problems)


@pytest.mark.parametrize("bad", [
    {"captureData": {}, "eventMetadata": {"eventId": "x", "inferenceTime": "t"}, "eventVersion": "0"},
    {"captureData": {"endpointInput": {"mode": "OUTPUT", "data": "", "encoding": "CSV", "observedContentType": "x"}},
     "eventMetadata": {"eventId": "x", "inferenceTime": "2026Z"}, "eventVersion": "0"},
    {"captureData": {"endpointInput": {"mode": "INPUT", "data": "%%", "encoding": "BASE64", "observedContentType": "x"}},
     "eventMetadata": {"eventId": "x", "inferenceTime": "2026Z"}, "eventVersion": "0"},
    {"captureData": {"endpointInput": {"mode": "INPUT", "data": "", "encoding": "CSV", "observedContentType": "x"}},
     "eventMetadata": {"eventId": "x", "inferenceTime": "2026Z"}, "eventVersion": "1"},
])
def test_record_problems_finds_what_is_wrong(bad):
    assert record_problems(bad)


def test_settings_validate_their_values(tmp_path):
    with pytest.raises(ValueError, match="sampling"):
        CaptureSettings(folder=tmp_path, sampling_percentage=-1)
    with pytest.raises(ValueError, match="flush interval"):
        CaptureSettings(folder=tmp_path, flush_interval=5)
    with pytest.raises(ValueError, match="at least one"):
        CaptureSettings(folder=tmp_path, capture_input=False, capture_output=False)
    s = CaptureSettings(folder=tmp_path, sampling_percentage=5, csv_content_types=("text/csv",))
    assert CaptureSettings.from_json(json.loads(json.dumps(s.to_json()))) == s


def test_settings_paths(tmp_path):
    assert settings(tmp_path).endpoint_folder("ep") == Path(tmp_path / "capture" / "ep" / "AllTraffic")
