"""``stsmon traffic``: inputs, the local endpoint through boto3, the AWS path with Stubber, the record."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from click.testing import CliRunner

from stsmon.commands import traffic
from stsmon.errors import NotDeployedError, UsageError
from stsmon.state import StateDir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "endpoint"))
from endpoint_fixtures import server_env, start_server, toy_model_dir  # noqa: E402,F401  (fixtures)


def write_split(path: Path, rows: list[tuple]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


ROWS = [(1, 'He said "yes", twice.', "He agreed twice."), (0, "The sky is blue.", "Stocks fell 5%."),
        (1, "a b c", "a b d")]


def test_split_and_msrp_inputs_are_read_exactly(tmp_path):
    pairs = traffic.read_pairs(write_split(tmp_path / "test.csv", ROWS))
    assert [(p.label, p.sentence1, p.sentence2) for p in pairs] == ROWS
    msrp = tmp_path / "msrp.txt"
    msrp.write_text(traffic.MSRP_HEADER + '\n1\t1\t2\tHe said "no.\tHe refused "flatly".\n0\t3\t4\tA\tB\n')
    pairs = traffic.read_pairs(msrp)
    assert [(p.label, p.sentence1, p.sentence2) for p in pairs] == [(1, 'He said "no.', 'He refused "flatly".'),
                                                                      (0, "A", "B")]


@pytest.mark.parametrize("content, message", [
    ("1,a\n", r"bad\.csv:1: expected 3 columns"),
    ("1,a,b\nx,c,d\n", r"bad\.csv:2: label 'x' is not a number"),
    ('1,"a,b\n', "malformed CSV"),
    ("", "has no sentence pairs"),
    (traffic.MSRP_HEADER + "\n1\t2\tonly three\n", r"bad\.csv:2: expected 5 tab-separated columns"),
])
def test_bad_inputs_name_file_line_and_value(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        traffic.read_pairs(path)


def test_latest_test_split_comes_from_the_newest_succeeded_preprocess(aws_clients, boto_client):
    """Through SageMaker (executions, steps, the Preprocess job's test output) and S3 (the file), so the
    same code finds it locally and on AWS (locally in tests/test_demo.py: the demo's traffic)."""
    from botocore.stub import Stubber
    
    sm, s3 = boto_client("sagemaker"), boto_client("s3")
    base = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipeline/execution/"
    job = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-e2-preprocess-x"
    uri = "s3://bucket/sts/pipelines/e2/Preprocess/test"
    body = b"1,a,b\n"
    with Stubber(sm) as sms, Stubber(s3) as s3s:
        sms.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
            {"PipelineExecutionArn": base + "e3", "PipelineExecutionStatus": "Failed"},
            {"PipelineExecutionArn": base + "e2", "PipelineExecutionStatus": "Succeeded"}]},
            {"PipelineName": "stsPipeline", "SortBy": "CreationTime", "SortOrder": "Descending"})
        sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
            {"StepName": "Preprocess", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job}}}]},
            {"PipelineExecutionArn": base + "e2", "SortOrder": "Ascending"})
        sms.add_response("describe_processing_job", {
            "ProcessingJobName": "pipelines-e2-preprocess-x", "ProcessingJobArn": job, "ProcessingJobStatus": "Completed",
            "CreationTime": datetime(2033, 5, 17, tzinfo=timezone.utc), "AppSpecification": {"ImageUri": "img"},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
            "ProcessingOutputConfig": {"Outputs": [
                {"OutputName": "train", "S3Output": {"S3Uri": "s3://bucket/x", "LocalPath": "/opt/ml/processing/train", "S3UploadMode": "EndOfJob"}},
                {"OutputName": "test", "S3Output": {"S3Uri": uri, "LocalPath": "/opt/ml/processing/test", "S3UploadMode": "EndOfJob"}}]}},
            {"ProcessingJobName": "pipelines-e2-preprocess-x"})
        s3s.add_response("list_objects_v2", {"Contents": [{"Key": "sts/pipelines/e2/Preprocess/test/test.csv"}]},
                         {"Bucket": "bucket", "Prefix": "sts/pipelines/e2/Preprocess/test/"})
        s3s.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))},
                         {"Bucket": "bucket", "Key": "sts/pipelines/e2/Preprocess/test/test.csv"})
        clients = aws_clients({"sagemaker": sm, "s3": s3})
        path = traffic.latest_test_split(clients, "stsPipeline")
    assert path == clients.state.root / "inputs" / "e2" / "test.csv" and path.read_bytes() == body


def test_no_training_run_means_train_first(tmp_path, local_clients):
    from stsmon.localcloud import LocalEnvironment
    from stsmon.localcloud.pipelines import pipeline_arn, write_pipeline

    state = StateDir(tmp_path / "state")
    write_pipeline(state, {"PipelineName": "stsPipeline", "PipelineArn": pipeline_arn(LocalEnvironment(), "stsPipeline"),
                           "PipelineDefinition": {"Version": "2020-12-01", "Steps": []}})
    with pytest.raises(NotDeployedError, match="run `stsmon train` first"):
        traffic.latest_test_split(local_clients(state), "stsPipeline")


def test_local_traffic_through_boto3_writes_the_record_and_capture(tmp_path, monkeypatch, start_server, toy_model_dir):
    from stsmon.endpoint.capture import scan_capture

    server = start_server(toy_model_dir, name="sts-endpoint", workers=1)
    split = write_split(tmp_path / "test.csv", ROWS * 4)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(traffic.command, ["--state-dir", str(server.state.root), "--input", str(split),
                                                  "--endpoint", "sts-endpoint", "--concurrency", "3", "--rate", "200"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "12 of 12 succeeded" in result.output
    record = json.loads((tmp_path / "testendpoint_out.json").read_text())
    runs = list(server.state.runs.glob("traffic-*.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text()) == record
    assert record["endpoint_name"] == "sts-endpoint" and record["url"] == server.url
    assert record["problem_type"] == "BinaryClassification" and record["failed"] == 0
    items = record["inferences"]
    assert [i["inference_id"] for i in items] == [f"sts_{n}" for n in range(1, 13)]
    assert [(i["label"], i["sentence1"], i["sentence2"]) for i in items] == [tuple(r) for r in ROWS * 4]
    assert all(i["prediction"]["label"] in (0, 1) and 0 <= i["prediction"]["probability"] <= 1 for i in items)
    # The ground-truth command reads the true labels from this record.
    from stsmon.monitoring.ground_truth import read_truth

    truth = read_truth(tmp_path / "testendpoint_out.json")
    assert truth.labels["sts_1"] == 1 and truth.labels["sts_2"] == 0 and len(truth.labels) == 12
    server.stop()  # flush capture: every request captured once, with its inference id
    ids = sorted(r["eventMetadata"]["inferenceId"] for r in scan_capture(server.capture_root).records)
    assert ids == sorted(f"sts_{n}" for n in range(1, 13))
    # The captured input is the CSV body the client sent.
    rec = next(r for r in scan_capture(server.capture_root).records if r["eventMetadata"]["inferenceId"] == "sts_1")
    assert rec["captureData"]["endpointInput"]["data"] == '"He said ""yes"", twice.",He agreed twice.\n'


def test_local_traffic_needs_a_running_endpoint(tmp_path):
    split = write_split(tmp_path / "test.csv", ROWS)
    result = CliRunner().invoke(traffic.command, ["--state-dir", str(tmp_path / "state"), "--input", str(split)])
    assert result.exit_code != 0
    assert isinstance(result.exception, NotDeployedError) and "run `stsmon deploy` first" in str(result.exception)


def _reply(body: bytes) -> dict:
    return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "text/csv",
            "InvokedProductionVariant": "AllTraffic"}


def test_aws_target_invokes_the_deployed_endpoint_with_boto3(tmp_path, clock):
    import boto3

    client = boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="y")
    pairs = traffic.read_pairs(write_split(tmp_path / "test.csv", ROWS))
    with Stubber(client) as stub:
        for n, pair in enumerate(pairs, 7):
            expected = {"EndpointName": "sts-endpoint", "Body": traffic.csv_body(pair), "ContentType": "text/csv",
                        "Accept": "text/csv", "InferenceId": f"run_{n}"}
            if n == 8:
                stub.add_client_error("invoke_endpoint", service_error_code="ModelError", service_message="boom",
                                      http_status_code=424, expected_params=expected)
            else:
                stub.add_response("invoke_endpoint", _reply(b"1,0.900000\n"), expected)
        record, written = traffic.run_traffic(
            state=StateDir(tmp_path / "state"), target="aws", endpoint_name="sts-endpoint", url=None, pairs=pairs,
            input_desc="test.csv", client=client, prefix="run_", start=7, concurrency=1, rate=None,
            out_file=tmp_path / "out.json", clock=clock)
        stub.assert_no_pending_responses()
    assert record["target"] == "aws" and record["succeeded"] == 2 and record["failed"] == 1
    assert record["inferences"][0]["prediction"] == {"label": 1, "probability": 0.9}
    assert record["inferences"][1]["error"] == "ModelError: boom" and record["inferences"][1]["prediction"] is None
    assert [p.name for p in written] == [written[0].name, "out.json"] and written[0].name.startswith("traffic-")


def test_parse_prediction_forms():
    assert traffic.parse_prediction(b"0,0.120000\n", "text/csv") == {"label": 0, "probability": 0.12}
    assert traffic.parse_prediction(b"3.250000\n", "text/csv") == {"score": 3.25}
    assert traffic.parse_prediction(b'{"predictions":[{"score":1.5}]}', "application/json") == {"score": 1.5}


def test_shifted_traffic_goes_through_the_same_client_path(tmp_path, monkeypatch, start_server, toy_model_dir):
    """--shift mismatched / file:PATH send the shifted pairs through the boto3 client, with no labels."""
    from stsmon import traffic_shift
    from stsmon.endpoint.capture import scan_capture

    server = start_server(toy_model_dir, name="sts-endpoint", workers=1)
    split = write_split(tmp_path / "test.csv", ROWS)
    domain = tmp_path / "docs.tsv"
    domain.write_text("The name is rebound.\tNext, the expression is evaluated.\nA b.\tC d.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    base = ["--state-dir", str(server.state.root), "--endpoint", "sts-endpoint"]
    result = CliRunner().invoke(traffic.command, base + ["--input", str(split), "--shift", "mismatched", "--seed", "5"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "testendpoint_out.json").read_text())
    expected = traffic_shift.mismatched([(r[1], r[2]) for r in ROWS], seed=5)
    assert [(i["sentence1"], i["sentence2"]) for i in record["inferences"]] == expected
    assert record["shift"] == "mismatched pairs" and record["problem_type"] is None
    assert all("label" not in i and i["error"] is None for i in record["inferences"])
    result = CliRunner().invoke(traffic.command, base + ["--shift", f"file:{domain}", "--prefix", "dom_"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "testendpoint_out.json").read_text())
    assert [(i["inference_id"], i["sentence1"]) for i in record["inferences"]] == [
        ("dom_1", "The name is rebound."), ("dom_2", "A b.")]
    assert record["input"] == str(domain) and record["shift"] == f"another domain from {domain}"
    server.stop()
    captured = {r["eventMetadata"]["inferenceId"]: r["captureData"]["endpointInput"]["data"]
                for r in scan_capture(server.capture_root).records}
    assert captured["dom_2"] == "A b.,C d.\n" and len(captured) == 5


def test_bad_shift_file_is_refused_before_anything_is_sent(tmp_path, monkeypatch):
    bad = tmp_path / "other.tsv"
    bad.write_text("ok\tfine\nonly one column\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(traffic.command, ["--state-dir", str(tmp_path / "state"), "--shift", f"file:{bad}"])
    assert isinstance(result.exception, UsageError) and result.exception.exit_code == 2
    assert f"{bad}:2: expected 2 tab-separated sentences" in str(result.exception)
    assert not (tmp_path / "testendpoint_out.json").exists() and not (tmp_path / "state").exists()
    result = CliRunner().invoke(traffic.command, ["--state-dir", str(tmp_path / "state"), "--shift", "sideways"])
    assert isinstance(result.exception, UsageError) and "--shift 'sideways' is not one of" in str(result.exception)
    result = CliRunner().invoke(traffic.command, ["--state-dir", str(tmp_path / "state"), "--shift", f"file:{bad}",
                                                  "--input", str(bad)])
    assert isinstance(result.exception, UsageError) and "leave out --input" in str(result.exception)
