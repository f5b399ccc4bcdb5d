"""Format compatibility: the SageMaker SDK's model-monitor file readers load our
outputs, and every file follows Model Monitor's documented shapes field by field."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from processing_scripts import monitor, monitor_records
from stscontracts.records import ground_truth_record
from stsmon.monitoring.records import capture_record
from stsmon.monitoring.synthetic import write_constraints, write_window

H12 = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)


def read_lines(pattern, data: bytes) -> list[tuple[bytes, ...]]:
    """The groups of ``pattern`` alone (no second layout, no json.loads) for each line of ``data``."""
    return pattern.findall(b"\n" + data.rstrip(b"\n"))

#: Model Monitor's binary-classification statistics keys (AWS docs, "Model quality metrics").
MODEL_MONITOR_BINARY_KEYS = {
    "confusion_matrix", "recall", "precision", "accuracy", "recall_best_constant_classifier",
    "precision_best_constant_classifier", "accuracy_best_constant_classifier", "true_positive_rate",
    "true_negative_rate", "false_positive_rate", "false_negative_rate", "receiver_operating_characteristic_curve",
    "precision_recall_curve", "auc", "f0_5", "f1", "f2", "f0_5_best_constant_classifier",
    "f1_best_constant_classifier", "f2_best_constant_classifier",
}


def _strict(text: str):
    def reject(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    write_window(root / "capture", root / "gt", H12, 400, accuracy=0.7, seed=11, files=1, endpoint="ep")
    write_constraints(root / "baseline", accuracy=0.9, f1=0.6, auc=0.5)
    code = monitor.main(["--capture-dir", str(root / "capture"), "--ground-truth-dir", str(root / "gt"),
                         "--baseline-dir", str(root / "baseline"), "--output-dir", str(root / "out"),
                         "--execution-time", "2026-11-27T13:05:00Z", "--endpoint-name", "ep",
                         "--schedule-name", "sch"])
    assert code == 0
    return root


def test_statistics_follow_model_monitor_shape(outputs):
    stats = _strict((outputs / "out" / "statistics.json").read_text())
    assert stats["version"] == 0.0
    assert stats["dataset"]["item_count"] == 400
    datetime.strptime(stats["dataset"]["evaluation_time"], "%Y-%m-%dT%H:%M:%SZ")
    block = stats["binary_classification_metrics"]
    assert set(block) == MODEL_MONITOR_BINARY_KEYS
    for name, entry in block.items():
        if name in ("confusion_matrix", "receiver_operating_characteristic_curve", "precision_recall_curve"):
            continue
        assert set(entry) == {"value", "standard_deviation"}, name
        assert isinstance(entry["value"], float) and isinstance(entry["standard_deviation"], float)
    assert set(block["confusion_matrix"]) == {"0", "1"} and set(block["confusion_matrix"]["0"]) == {"0", "1"}
    assert set(block["receiver_operating_characteristic_curve"]) == {"false_positive_rates", "true_positive_rates"}
    assert set(block["precision_recall_curve"]) == {"precisions", "recalls"}


def test_violations_and_cloudwatch_file_shapes(outputs):
    violations = _strict((outputs / "out" / "constraint_violations.json").read_text())
    assert list(violations) == ["violations"] and violations["violations"]
    for v in violations["violations"]:
        assert set(v) == {"metric_name", "constraint_check_type", "description"}
    cw = _strict((outputs / "out" / "cloudwatch_metrics.json").read_text())
    assert cw["Namespace"] == "stsmodelmonitor"
    for datum in cw["MetricData"]:
        assert set(datum) == {"MetricName", "Timestamp", "Dimensions", "Value", "Unit"}
        assert datum["Dimensions"] == [{"Name": "Endpoint", "Value": "ep"}, {"Name": "MonitoringSchedule", "Value": "sch"}]
        assert datum["Timestamp"] == "2026-11-27T13:00:00Z"
    result = _strict((outputs / "out" / "monitoring_result.json").read_text())
    assert set(result["counts"]) == set(monitor.COUNT_KEYS)
    assert result["status"] in ("Completed", "CompletedWithViolations", "Failed")
    assert set(result["window"]) == {"start", "end"}


@pytest.mark.slow
def test_sagemaker_sdk_readers_load_our_files(outputs, monkeypatch):
    """sagemaker.core.model_monitor's Statistics / Constraints / ConstraintViolations (S3 in moto)."""
    import boto3
    from moto import mock_aws
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.model_monitor.monitoring_files import ConstraintViolations, Constraints, Statistics

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        session = Session(boto_session=boto3.Session(region_name="us-east-1"))
        stats = Statistics.from_file_path(str(outputs / "out" / "statistics.json"), sagemaker_session=session)
        constraints = Constraints.from_file_path(str(outputs / "baseline" / "constraints.json"), sagemaker_session=session)
        violations = ConstraintViolations.from_file_path(
            str(outputs / "out" / "constraint_violations.json"), sagemaker_session=session)
    assert stats.body_dict == json.loads((outputs / "out" / "statistics.json").read_text())
    assert stats.file_s3_uri.endswith("/statistics.json")
    assert constraints.body_dict["binary_classification_constraints"]["accuracy"]["comparison_operator"] == "LessThanThreshold"
    assert [v["metric_name"] for v in violations.body_dict["violations"]] == [
        v["metric_name"] for v in json.loads((outputs / "out" / "constraint_violations.json").read_text())["violations"]]


def test_capture_and_ground_truth_records_follow_the_documented_shape():
    record = capture_record(event_id="e-1", inference_id="sts_1", inference_time=H12, output="1,0.87\n",
                            input_data='"a","b"\n')
    assert list(record) == ["captureData", "eventMetadata", "eventVersion"]
    assert list(record["captureData"]) == ["endpointInput", "endpointOutput"]
    for channel, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
        assert list(record["captureData"][channel]) == ["observedContentType", "mode", "data", "encoding"]
        assert record["captureData"][channel]["mode"] == mode
        assert record["captureData"][channel]["encoding"] == "CSV"
    assert record["eventMetadata"] == {"eventId": "e-1", "inferenceId": "sts_1", "inferenceTime": "2026-11-27T12:00:00.000Z"}
    assert record["eventVersion"] == "0"
    no_id = capture_record(event_id="e-2", inference_time=H12, output="{}", output_type="application/json")
    assert "inferenceId" not in no_id["eventMetadata"]
    assert no_id["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert ground_truth_record("sts_1", 1) == {
        "groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "sts_1"}, "eventVersion": "0"}
    assert ground_truth_record("sts_2", 3.25)["groundTruthData"]["data"] == "3.25"
    # the monitor's fast path reads exactly this layout
    for separators in ((", ", ": "), (",", ":")):  # json.dumps' default, and compact as SageMaker writes
        line = json.dumps(record, separators=separators).encode()
        [groups] = read_lines(monitor_records.CAPTURE_RECORD_SPACED, line)  # spaces optional
        assert groups[3:] == (b"sts_1", b"", b"")  # the inferenceId (the key), no eventId needed, not an "other" line
        gt = json.dumps(ground_truth_record("sts_1", 1), separators=separators).encode()
        assert read_lines(monitor_records.LABEL_RECORD_SPACED, gt) == [(b"1", b"CSV", b"sts_1", b"")]


@pytest.mark.parametrize("capture_input", [True, False])
def test_files_of_the_endpoint_capture_writer_parse_on_the_fast_path(tmp_path, capture_input):
    """stsmon.endpoint.capture writes compact, non-ASCII, output-only records: the columnar path reads them all."""
    from stsmon.endpoint.capture import CaptureSettings, CaptureWriter
    from stsmon.endpoint.capture_record import CaptureEvent

    settings = CaptureSettings(folder=tmp_path / "capture", capture_input=capture_input, flush_interval=0.05)
    writer = CaptureWriter(settings, "ep").start()
    start = datetime(2026, 11, 27, 12, 10, tzinfo=timezone.utc).timestamp()
    bodies = [("text/csv", b"1,0.91\n"), ("application/json", b'{"predictions": [{"label": 0, "probability": 0.2}]}'),
              ("application/jsonlines", b'{"label": 1, "probability": 0.7}\n')]
    for i in range(30):
        out_type, out_body = bodies[i % 3]
        writer.submit(CaptureEvent(time=start + i, inference_id=f"sts_{i}", input_type="text/csv",
                                   input_body='"Café ""crème""",naïve – ok\n'.encode(), output_type=out_type, output_body=out_body))
    writer.close()
    files = sorted((tmp_path / "capture").rglob("*.jsonl"))
    assert files
    lines = b"".join(p.read_bytes() for p in files)
    groups = read_lines(monitor_records.CAPTURE_RECORD, lines)
    assert len(groups) == 30 and all(g[3] or g[4] for g in groups)  # every record on the fast path
    records = monitor_records.read_captures(files)
    decoded = monitor_records.decode_predictions(records, "BinaryClassification")
    assert records.malformed == 0 and bool(decoded.ok.all()) and len(records) == 30
    assert decoded.prediction.tolist()[:3] == [1.0, 0.0, 1.0]
