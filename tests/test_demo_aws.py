"""``stsmon demo --target aws``: the same commands against AWS, composed in order.

The demo has one implementation for both targets (tests/test_demo.py runs it
locally); each command's AWS path has its own botocore-Stubber/moto tests.
Here the demo's own pieces are tested against AWS (waiting for SageMaker's
capture files in S3 with moto, the newest monitoring result with Stubber),
and the composition with the commands replaced by recorders: every step runs
with --target aws, in the flow's order, and the demo checks the outcomes it
is given.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import click
import pytest
from click.testing import CliRunner
from moto import mock_aws

from stsmon import cli as cli_module
from stsmon import demo as d
from stsmon.monitoring.records import capture_record

REGION = "us-east-1"
BUCKET = "sts-artifacts-123456789012-us-east-1"
CAPTURE_URI = f"s3://{BUCKET}/sts/datacapture"
START = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
END = datetime(2026, 11, 27, 13, tzinfo=timezone.utc)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def put_captures(s3, ids, minute):
    lines = [json.dumps(capture_record(event_id=f"e-{i}", inference_id=i, output="1,0.9\n",
                                       inference_time=START.replace(minute=minute)))
             for i in ids]
    key = f"sts/datacapture/sts-endpoint/AllTraffic/2026/11/27/12/{minute:02d}-00-000-{len(ids)}.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())


def test_waits_until_every_capture_record_is_in_s3(aws):
    put_captures(aws, ["sts_1", "sts_2"], minute=5)
    naps = []

    def sleep(seconds):  # SageMaker delivers the rest while we wait
        naps.append(seconds)
        put_captures(aws, ["sts_3"], minute=6)

    lines = []
    arrived = d.wait_for_s3_capture(aws, CAPTURE_URI, "sts-endpoint", START, END, {"sts_1", "sts_2", "sts_3"},
                                    poll=20, sleep=sleep, echo=lines.append)
    assert arrived == 3 and naps == [20]
    assert lines == ["    waiting for data capture in S3: 2 of 3 records so far"]


def test_capture_that_never_arrives_is_a_clear_failure(aws):
    put_captures(aws, ["sts_1"], minute=5)
    with pytest.raises(d.DemoFailed, match="only 1 of 2 capture records .* is data capture enabled"):
        d.wait_for_s3_capture(aws, CAPTURE_URI, "sts-endpoint", START, END, {"sts_1", "sts_2"},
                              timeout=40, poll=20, sleep=lambda s: None)


def test_latest_monitoring_result_and_alarms_are_read_from_aws(aws_clients, boto_client):
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    sm, s3, cw = boto_client("sagemaker"), boto_client("s3"), boto_client("cloudwatch")
    output = f"s3://{BUCKET}/sts/monitoring/sts-model-quality"
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipelinemonitoring/execution/exec2"
    result = {"status": "CompletedWithViolations", "failure_reason": "", "problem_type": "BinaryClassification",
              "execution_time": "2026-11-27T13:05:00.000Z",
              "window": {"start": "2026-11-27T12:00:00Z", "end": "2026-11-27T13:00:00Z"},
              "endpoint_name": "sts-endpoint", "schedule_name": "sts-model-quality",
              "counts": {"captured": 870, "labelled": 870, "matched": 870}, "label_coverage": 1.0,
              "metrics": {"accuracy": 0.62}, "constraints": {"accuracy": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}},
              "violations": [{"metric_name": "accuracy", "constraint_check_type": "LessThanThreshold", "description": "d"}]}
    raw = json.dumps(result).encode()
    with Stubber(sm) as sms, Stubber(s3) as s3s, Stubber(cw) as cws:
        sms.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
            {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Succeeded"}]})
        s3s.add_response("get_object", {"Body": StreamingBody(io.BytesIO(raw), len(raw))},
                         {"Bucket": BUCKET, "Key": "sts/monitoring/sts-model-quality/exec2/monitoring_result.json"})
        cws.add_response("describe_alarms", {"MetricAlarms": [
            {"AlarmName": "sts-quality-accuracy", "StateValue": "ALARM", "MetricName": "accuracy"}]},
            {"AlarmNamePrefix": "sts-", "AlarmTypes": ["MetricAlarm"]})
        outcome = d.latest_monitor_result(aws_clients({"sagemaker": sm, "s3": s3, "cloudwatch": cw}),
                                          "stsPipelineMonitoring", output, ("sts-quality-", "sts-monitor-"))
    assert outcome["execution_id"] == "exec2"
    assert outcome["status"] == "CompletedWithViolations" and outcome["violations"] == ["accuracy"]
    assert outcome["alarms"] == {"sts-quality-accuracy": "ALARM"}
    assert outcome["report"] == f"{output}/exec2/report.html"


# -- composition -------------------------------------------------------------

def recorder(name: str, calls: list, effect=None) -> click.Command:
    """A stand-in command that records how the demo called it."""
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.pass_context
    def command(ctx, **kwargs):
        pass

    def callback(**kwargs):
        calls.append((name, kwargs))
        if effect is not None:
            effect(**kwargs)

    command.callback = callback
    return command


def test_every_step_runs_with_target_aws_in_order(tmp_path, repo_root, monkeypatch):
    from stsmon.commands import deploy, ground_truth, monitor, report, traffic, train

    calls: list = []
    monkeypatch.chdir(repo_root)
    data = tmp_path / "stsmsrpc.txt"
    data.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
    def synth(project, context, out, **_):
        out.mkdir(parents=True)
        calls.append(("synth", {}))
        return out

    monkeypatch.setattr("stsmon.commands.synth.run_synth", synth)

    def trained(out_file, **_):
        out_file.write_text(json.dumps({"model_package_arn": "arn:pkg/1", "model_approval_status": "Approved",
                                        "metrics": {"accuracy": 0.79}}))

    def sent(out_file, prefix="sts_", start=1, **_):
        out_file.write_text(json.dumps({"inferences": [{"inference_id": f"{prefix}{start}", "error": None},
                                                       {"inference_id": f"{prefix}{start + 1}", "error": None}]}))

    monkeypatch.setattr(deploy, "command", recorder("deploy", calls))
    monkeypatch.setattr(train, "command", recorder("train", calls, trained))
    monkeypatch.setattr(traffic, "command", recorder("traffic", calls, sent))
    monkeypatch.setattr(ground_truth, "command", recorder("ground-truth", calls))
    monkeypatch.setattr(monitor, "run", recorder("monitor run", calls))
    monkeypatch.setattr(report, "command", recorder("report", calls))
    monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **_: f"<{service} client>")
    monkeypatch.setattr("stsmon.clients.stacks.deployed_outputs", lambda clients, kinds=(): {
        "TrainingPipelineName": "stsPipeline", "EndpointName": "sts-endpoint", "DataCaptureUri": CAPTURE_URI,
        "MonitoringPipelineName": "stsPipelineMonitoring",
        "MonitoringOutputUri": f"s3://{BUCKET}/sts/monitoring/sts-model-quality"})
    monkeypatch.setattr(d, "training_key", lambda clients, pipeline, data: "key")
    monkeypatch.setattr(d, "endpoint_in_service", lambda clients, name: f"https://runtime.sagemaker/{name}")
    waited = []
    monkeypatch.setattr(d, "wait_for_s3_capture", lambda s3, uri, endpoint, start, end, ids, **kw: waited.append(
        (s3, uri, endpoint, ids)) or len(ids))
    outcomes = iter([
        {"status": "Completed", "failure_reason": "", "violations": [], "metrics": {"accuracy": 0.8}, "alarms": {},
         "report": "s3://x/1/report.html"},
        {"status": "CompletedWithViolations", "failure_reason": "", "violations": ["accuracy"], "metrics": {},
         "alarms": {"sts-quality-accuracy": "ALARM"}, "report": "s3://x/2/report.html"},
        {"status": "CompletedWithViolations", "failure_reason": "", "violations": [], "metrics": {},
         "data_quality": {"status": "CompletedWithViolations", "drifted": ["word1_f1"], "violations": 1},
         "alarms": {"sts-quality-accuracy": "ALARM", "sts-quality-data-drift": "ALARM"},
         "alarm_metrics": {"sts-quality-accuracy": "accuracy", "sts-quality-data-drift": "baseline_drift_violations"},
         "report": "s3://x/3/report.html"},
    ])
    monkeypatch.setattr(d, "latest_monitor_result", lambda clients, pipeline, uri, prefixes: next(outcomes))

    result = CliRunner().invoke(cli_module.cli, ["demo", "--target", "aws", "--state-dir", str(tmp_path / "state"),
                                                 "--assembly", str(tmp_path / "cdk.out"), "--input-data", str(data)])
    assert result.exit_code == 0, result.output
    assert "The whole flow ran on AWS (us-east-1)" in result.output
    steps = [(name, kw.get("target")) for name, kw in calls if name != "synth"]
    assert steps == [("deploy", "aws"), ("train", "aws"), ("deploy", "aws"), ("traffic", "aws"),
                     ("ground-truth", "aws"), ("monitor run", "aws"), ("ground-truth", "aws"),
                     ("monitor run", "aws")] + [("traffic", "aws")] * 100 + [("monitor run", "aws"), ("report", "aws")]
    # the label-free drill: a 2-pair test split goes again until 200 shifted requests went out, ids continuing
    shifted = [kw for name, kw in calls if name == "traffic" and kw.get("shift_text")]
    assert [kw["start"] for kw in shifted] == list(range(1, 201, 2))
    assert {kw["prefix"] for kw in shifted} == {"shift_"} and len({kw["seed"] for kw in shifted}) == 100
    deploys = [kw["stacks"] for name, kw in calls if name == "deploy"]
    assert deploys == [("sts-foundation", "sts-training"), ()]
    labels = [(kw["mode"], kw.get("error_rate")) for name, kw in calls if name == "ground-truth"]
    assert labels[0][0] == "true" and labels[1] == ("noise", d.DRILL_ERROR_RATE)
    shifted = [kw for name, kw in calls if name == "traffic"][1]
    assert (shifted["shift_text"], shifted["prefix"]) == (d.SHIFT, d.SHIFT_PREFIX)  # the label-free drill
    assert waited == [("<s3 client>", CAPTURE_URI, "sts-endpoint", {"sts_1", "sts_2"}),
                      ("<s3 client>", CAPTURE_URI, "sts-endpoint", {f"shift_{n}" for n in range(1, 201)})]


def test_a_drill_without_violations_fails_the_aws_demo(tmp_path, repo_root, monkeypatch):
    from stsmon.commands import deploy, ground_truth, monitor, report, traffic, train

    monkeypatch.chdir(repo_root)
    data = tmp_path / "stsmsrpc.txt"
    data.write_text("x")
    calls: list = []
    monkeypatch.setattr("stsmon.commands.synth.run_synth", lambda project, context, out, **_: out.mkdir(parents=True) or out)
    monkeypatch.setattr(deploy, "command", recorder("deploy", calls))
    monkeypatch.setattr(train, "command", recorder("train", calls, lambda out_file, **_: out_file.write_text("{}")))
    monkeypatch.setattr(traffic, "command", recorder("traffic", calls, lambda out_file, **_: out_file.write_text(
        json.dumps({"inferences": [{"inference_id": "sts_1", "error": None}]}))))
    monkeypatch.setattr(ground_truth, "command", recorder("ground-truth", calls))
    monkeypatch.setattr(monitor, "run", recorder("monitor run", calls))
    monkeypatch.setattr(report, "command", recorder("report", calls))
    monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **_: f"<{service} client>")
    monkeypatch.setattr("stsmon.clients.stacks.deployed_outputs", lambda clients, kinds=(): {
        "TrainingPipelineName": "stsPipeline", "EndpointName": "sts-endpoint", "DataCaptureUri": CAPTURE_URI,
        "MonitoringPipelineName": "stsPipelineMonitoring",
        "MonitoringOutputUri": f"s3://{BUCKET}/sts/monitoring/sts-model-quality"})
    monkeypatch.setattr(d, "training_key", lambda clients, pipeline, data: "key")
    monkeypatch.setattr(d, "endpoint_in_service", lambda clients, name: f"https://runtime.sagemaker/{name}")
    monkeypatch.setattr(d, "wait_for_s3_capture", lambda *a, **k: 1)
    monkeypatch.setattr(d, "latest_monitor_result", lambda *a: {
        "status": "Completed", "failure_reason": "", "violations": [], "metrics": {}, "alarms": {}, "report": "r"})
    code = cli_module.main(["demo", "--target", "aws", "--state-dir", str(tmp_path / "state"),
                            "--assembly", str(tmp_path / "cdk.out"), "--input-data", str(data)])
    assert code == 1
    assert [name for name, _ in calls][-1] == "monitor run"  # stopped at the drill; no report


def test_an_earlier_label_free_drill_in_the_window_is_known_and_drift_alarms_are_found(tmp_path):
    record = tmp_path / "shifted_traffic.json"
    assert not d.traffic_in_window(record, "2033-05-01T10:00:00Z/2033-05-01T11:00:00Z")  # no drill yet
    record.write_text(json.dumps({"started": "2033-05-01T10:40:02Z", "ended": "2033-05-01T10:41:30Z"}))
    assert d.traffic_in_window(record, "2033-05-01T10:00:00Z/2033-05-01T11:00:00Z")
    assert not d.traffic_in_window(record, "2033-05-01T11:00:00Z/2033-05-01T12:00:00Z")
    record.write_text("not json")
    assert not d.traffic_in_window(record, "2033-05-01T10:00:00Z/2033-05-01T11:00:00Z")
    outcome = {"alarm_metrics": {"sts-quality-accuracy": "accuracy", "sts-quality-drift": "baseline_drift_violations",
                                 "sts-quality-drift-word1_f1": "feature_baseline_drift_word1_f1",
                                 "sts-monitor-failed": "monitoring_failed", "sts-data-quality-drift-1": None}}
    assert d.drift_alarms(outcome) == ["sts-data-quality-drift-1", "sts-quality-drift", "sts-quality-drift-word1_f1"]
