"""The monitoring run through the local clients (stsmon.monitoring.runs, the code --target aws runs too):
result, the metrics the job published, alarms and their changes, the run record."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from stsmon.errors import NotDeployedError, UsageError
from stsmon.localcloud.executions import list_executions
from stsmon.monitoring import metrics, runs
from stscontracts.names import hour_prefix
from stscontracts.records import ground_truth_record
from stsmon.monitoring.records import write_jsonl
from stsmon.monitoring.synthetic import write_window
from stsmon.state import StateDir

from monitoring_deploy import ENDPOINT, PIPELINE, SCHEDULE, published_points, run_monitor

H12 = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
DIMS = [{"Name": "Endpoint", "Value": ENDPOINT}, {"Name": "MonitoringSchedule", "Value": SCHEDULE}]


def no_result_alarm(state, *, now):
    """The monitoring stack's {p}-monitor-no-result alarm, as deployed."""
    metrics.save_alarm(state, "sts-monitor-no-result", "arn:aws:cloudwatch:us-east-1:000000000000:alarm:sts-monitor-no-result", {
        "Namespace": "stsmodelmonitor", "MetricName": "monitoring_failed", "Dimensions": DIMS, "Statistic": "Maximum",
        "Period": 3600, "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "breaching", "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:sts-alarms"]}, now=now)


def failed_executions_alarm(state, *, now):
    """The monitoring stack's {p}-monitor-failed alarm, as deployed."""
    metrics.save_alarm(state, "sts-monitor-failed", "arn:x", {
        "Namespace": "AWS/Sagemaker/ModelBuildingPipeline", "MetricName": "ExecutionFailed", "Statistic": "Sum",
        "Dimensions": [{"Name": "PipelineName", "Value": PIPELINE}], "Period": 3600, "EvaluationPeriods": 1,
        "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching"}, now=now)


def alarm(state, metric="accuracy", threshold=0.8, op="LessThanThreshold", *, now):
    metrics.save_alarm(state, f"sts-quality-{metric}", f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:sts-quality-{metric}", {
        "Namespace": "stsmodelmonitor", "MetricName": metric, "Dimensions": DIMS, "Statistic": "Average",
        "Period": "3600", "EvaluationPeriods": "1", "Threshold": str(threshold), "ComparisonOperator": op,
        "TreatMissingData": "notBreaching", "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:sts-alarms"]}, now=now)


@pytest.mark.parametrize("window, expected", [
    ("previous", {}),
    ("current", {"WindowEnd": "2026-11-27T13:00:00Z", "WindowHours": "1", "LabelDelayHours": "0"}),
    ("2026-11-27T13:20:00Z", {"WindowEnd": "2026-11-27T13:00:00Z", "LabelDelayHours": "0"}),
    ("2026-11-27T08:00:00+01:00/2026-11-27T13:00:00Z", {"WindowEnd": "2026-11-27T13:00:00Z", "WindowHours": "6", "LabelDelayHours": "0"}),
])
def test_window_parameters(window, expected):
    assert runs.window_parameters(window, now=datetime(2026, 11, 27, 12, 40, tzinfo=timezone.utc)) == expected


@pytest.mark.parametrize("window", ["yesterday", "2026-11-27T13:00:00Z/2026-11-27T13:30:00Z"])
def test_bad_windows(window, clock):
    with pytest.raises(UsageError, match="--window"):
        runs.window_parameters(window, now=clock.now())


def test_not_deployed_names_what_is_missing(tmp_path, local_clients):
    from stsmon.clients.stacks import require_outputs

    with pytest.raises(NotDeployedError, match="MonitoringPipelineName.*run `stsmon deploy` first"):
        require_outputs(local_clients(StateDir(tmp_path)), "MonitoringPipelineName")


@pytest.mark.slow
def test_drill_through_the_local_pipeline(deployment, clock, local_clients):
    """True labels: Completed, alarm OK. 30 % noise in the next hour: CompletedWithViolations, alarm ALARM."""
    state = deployment.state
    alarm(state, now=clock.now())
    no_result_alarm(state, now=clock.now())
    clean = write_window(deployment.capture_root, deployment.ground_truth_root, H12, 600, accuracy=0.9, seed=1,
                         files=2, endpoint=ENDPOINT, id_prefix="a")
    clients = local_clients(state)
    run = run_monitor(clients, "2026-11-27T13:00:00Z")
    assert run.execution["PipelineExecutionStatus"] == "Succeeded", run.execution.get("FailureReason")
    assert run.status == "Completed" and run.result["counts"]["matched"] == 600
    # through the executor's job endpoint: the window's 2 capture files and its hour's labels, nothing else
    assert run.result["read"]["objects"] == 3 and run.result["read"]["list_calls"] == 4
    assert run.output_uri.startswith(f"s3://sts-artifacts/sts/monitoring/{SCHEDULE}/")
    assert (state.s3_path(run.output_uri) / "report.html").is_file()
    assert published_points(state, run) > 10  # published by monitor.py itself, through the job endpoint, as on AWS
    assert sorted((a["name"], a["state"]) for a in run.alarms) == [("sts-monitor-no-result", "OK"), ("sts-quality-accuracy", "OK")]

    h13 = H12.replace(hour=13)
    noisy = write_window(deployment.capture_root, deployment.state.root.parent / "unused", h13, 600, accuracy=0.9,
                         seed=2, files=1, endpoint=ENDPOINT, id_prefix="b")
    flip = np.random.default_rng(0).random(600) < 0.3
    write_jsonl(deployment.ground_truth_root / hour_prefix(h13) / "noisy.jsonl",
                [ground_truth_record(i, int(1 - y if f else y)) for i, y, f in zip(noisy.ids, noisy.y_true, flip)])
    run2 = run_monitor(clients, "2026-11-27T14:00:00Z")
    assert run2.status == "CompletedWithViolations"
    assert "accuracy" in {v["metric_name"] for v in run2.result["violations"]}
    state_alarm = next(a for a in run2.alarms if a["name"] == "sts-quality-accuracy")
    assert state_alarm["state"] == "ALARM" and state_alarm["changed"] and state_alarm["previous"] == "OK"
    history = next(a for a in metrics.list_alarms(state) if a["AlarmName"] == "sts-quality-accuracy")["History"]
    assert history[-1]["To"] == "ALARM" and history[-1]["Actions"] == ["arn:aws:sns:us-east-1:000000000000:sts-alarms"]

    points = metrics.MetricStore(state).points("stsmodelmonitor", "accuracy", {d["Name"]: d["Value"] for d in DIMS})
    assert [p.timestamp.hour for p in points] == [13, 14]
    # the end-of-execution work done again stores nothing new (each data point's Source is its execution)
    from stsmon.localcloud.api.cloudwatch import PIPELINE_NAMESPACE, record_pipeline_execution

    before = len(metrics.MetricStore(state).points(PIPELINE_NAMESPACE))
    from stsmon.localcloud.executions import describe_execution

    record_pipeline_execution(state, describe_execution(state, PIPELINE, run.execution_id), clock=clock)
    assert len(metrics.MetricStore(state).points(PIPELINE_NAMESPACE)) == before
    record = json.loads(runs.write_run_record(state, run2, target="local").read_text())
    assert record["status"] == "CompletedWithViolations" and record["execution_id"] == run2.execution_id
    assert record["alarms"] == run2.alarms
    assert [r.status for r in runs.list_runs(clients, PIPELINE)] == ["Completed", "CompletedWithViolations"]
    assert len(list_executions(state, PIPELINE)) == 2
    assert clean.ids.size == 600


@pytest.mark.slow
def test_no_capture_at_all_fails_the_execution_and_raises_both_alarms(deployment, clock, local_clients):
    """Fault 6: a Failed window used to end in a Succeeded execution, monitoring_failed = 1 that no
    alarm watched, and nothing in ALARM. Now monitor.py publishes, then fails the job: the
    execution is Failed with monitor.py's reason (the job's ExitMessage), ExecutionFailed and
    monitoring_failed both alarm."""
    state = deployment.state
    failed_executions_alarm(state, now=clock.now())
    no_result_alarm(state, now=clock.now())
    run = run_monitor(local_clients(state), "2026-11-27T13:00:00Z")
    assert run.execution["PipelineExecutionStatus"] == "Failed" and run.result is None  # outputs of a failed job: not uploaded
    assert run.status == "Failed"
    assert run.failure_reason.startswith("no capture records in the window "
                                         "[2026-11-27T12:00:00Z, 2026-11-27T13:00:00Z)")
    assert "exit code 3" in run.execution["FailureReason"]
    assert sorted((a["name"], a["state"]) for a in run.alarms) == [("sts-monitor-failed", "ALARM"), ("sts-monitor-no-result", "ALARM")]
    failed = metrics.MetricStore(state).points("stsmodelmonitor", "monitoring_failed", {d["Name"]: d["Value"] for d in DIMS})
    assert [(p.value, p.timestamp.isoformat()) for p in failed] == [(1.0, "2026-11-27T13:00:00+00:00")]
    record = json.loads(runs.write_run_record(state, run, target="local").read_text())
    assert record["status"] == "Failed" and record["failure_reason"] == run.failure_reason


@pytest.mark.slow
def test_a_failed_window_then_a_good_one(deployment, clock, local_clients):
    """Labels missing in one hour: Failed and both alarms; the next hour complete: back to OK."""
    state = deployment.state
    failed_executions_alarm(state, now=clock.now())
    no_result_alarm(state, now=clock.now())
    write_window(deployment.capture_root, deployment.state.root.parent / "unused", H12, 5, endpoint=ENDPOINT, id_prefix="u")
    clients = local_clients(state)
    bad = run_monitor(clients, "2026-11-27T13:00:00Z")
    assert bad.status == "Failed" and "none of the 5 captured records" in bad.failure_reason
    assert {a["name"]: a["state"] for a in bad.alarms} == {"sts-monitor-failed": "ALARM", "sts-monitor-no-result": "ALARM"}
    write_window(deployment.capture_root, deployment.ground_truth_root, H12.replace(hour=13), 5, endpoint=ENDPOINT, id_prefix="g")
    good = run_monitor(clients, "2026-11-27T14:00:00Z")
    assert good.execution["PipelineExecutionStatus"] == "Succeeded" and good.status in ("Completed", "CompletedWithViolations")
    # the window's result is good again; the failed execution still counts in this hour's ExecutionFailed
    # Sum (both ran at 12:30 by the test's clock), as it would on CloudWatch until the hour has passed
    assert {a["name"]: a["state"] for a in good.alarms} == {"sts-monitor-failed": "ALARM", "sts-monitor-no-result": "OK"}
    listed = runs.list_runs(clients, PIPELINE)
    assert [r.status for r in listed] == ["Failed", good.status]
    assert listed[0].failure_reason == bad.failure_reason


def test_the_alarm_prefixes_cover_every_alarm_of_the_monitoring_stack(repo_root):
    """report, monitor run and the demo read alarm states by these prefixes: every alarm the monitoring
    stack defines (its snapshot: quality, the monitor's own, data-quality drift, estimated quality) is read."""
    template = json.loads((repo_root / "tests" / "stacks" / "snapshots" / "sts-monitoring.json").read_text())
    alarms = [r["Properties"]["AlarmName"] for r in template["Resources"].values()
              if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert "sts-data-quality-drift" in alarms and "sts-estimated-accuracy" in alarms
    prefixes = runs.monitoring_alarm_prefixes("sts")
    assert [a for a in alarms if not a.startswith(prefixes)] == []
