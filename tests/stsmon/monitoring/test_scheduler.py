"""The local scheduler: the deployed schedule fires the monitoring pipeline; the process starts and stops."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from monitoring_deploy import CAPTURE_URI, ENDPOINT, GROUND_TRUTH_URI, PIPELINE, SCHEDULE

from stscontracts import names
from stsmon.clock import FixedClock
from stsmon.errors import StsmonError
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.handlers import DeployContext, DeployedResource, Unresolved
from stsmon.resource_handlers import handler_for
from stsmon.monitoring import ground_truth as gt
from stsmon.monitoring import metrics, scheduler
from stsmon.monitoring.synthetic import write_window

# Years from any date this suite runs on: a fire time that mixed in the wall clock would show.
T0 = datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc)
PIPELINE_ARN = f"arn:aws:sagemaker:us-east-1:000000000000:pipeline/{PIPELINE.lower()}"


def schedule_props(expression="cron(0 * ? * * *)", state="ENABLED"):
    return {
        "Name": SCHEDULE, "ScheduleExpression": expression, "ScheduleExpressionTimezone": "UTC", "State": state,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": PIPELINE_ARN, "RoleArn": "arn:aws:iam::000000000000:role/sched",
                   "SageMakerPipelineParameters": {"PipelineParameterList": [{"Name": "PublishCloudWatch", "Value": "true"}]}},
    }


def ctx(deployment):
    return DeployContext(state=deployment.state, env=LocalEnvironment(), stack_name="sts-monitoring", clock=FixedClock(T0))


@dataclass
class FakeRun:
    execution: dict
    status: str = "Completed"
    failure_reason: str = ""
    alarms: list = field(default_factory=list)


def test_schedule_handler_records_the_target_pipeline_and_parameters(deployment):
    handler = handler_for("AWS::Scheduler::Schedule")
    result = handler.create(ctx(deployment), "Schedule", schedule_props())
    assert result.physical_id == SCHEDULE
    assert result.attributes["Arn"] == f"arn:aws:scheduler:us-east-1:000000000000:schedule/default/{SCHEDULE}"
    (record,) = scheduler.list_schedules(deployment.state)
    assert record["PipelineName"] == PIPELINE and record["Parameters"] == {"PublishCloudWatch": "true"}
    assert scheduler.process_info(deployment.state) is None  # autostart off in these tests
    previous = DeployedResource("Schedule", "AWS::Scheduler::Schedule", SCHEDULE, schedule_props())
    handler.update(ctx(deployment), "Schedule", schedule_props("rate(2 hours)"), previous)
    assert scheduler.list_schedules(deployment.state)[0]["ScheduleExpression"] == "rate(2 hours)"
    handler.delete(ctx(deployment), "Schedule", previous)
    assert scheduler.list_schedules(deployment.state) == []


@pytest.mark.parametrize(
    "props, message",
    [
        (dict(schedule_props(), ScheduleExpression="cron(0 * * * *)"), "cron needs 6 fields"),
        (dict(schedule_props(), Target={"Arn": "arn:aws:lambda:us-east-1:000000000000:function:f"}),
         "only SageMaker pipeline targets run locally"),
        (dict(schedule_props(), State="PAUSED"), "State 'PAUSED'"),
    ],
)
def test_schedule_handler_check_refuses_what_cannot_run(deployment, props, message):
    with pytest.raises(StsmonError, match=message):
        handler_for("AWS::Scheduler::Schedule").check(ctx(deployment), "Schedule", props)


def test_check_accepts_values_not_resolved_yet(deployment):
    props = dict(schedule_props(), Target=dict(schedule_props()["Target"], Arn=Unresolved("Fn::GetAtt Pipeline.Arn")))
    handler_for("AWS::Scheduler::Schedule").check(ctx(deployment), "Schedule", props)
    alarm = {"Namespace": "stsmodelmonitor", "MetricName": "accuracy", "ComparisonOperator": Unresolved("x"),
             "EvaluationPeriods": 1, "Threshold": Unresolved("y"), "Period": 3600}
    handler_for("AWS::CloudWatch::Alarm").check(ctx(deployment), "Alarm", alarm)


def test_unknown_target_pipeline_is_an_error(deployment):
    props = dict(schedule_props(), Target=dict(schedule_props()["Target"], Arn=PIPELINE_ARN + "x"))
    with pytest.raises(StsmonError, match="is not deployed locally"):
        handler_for("AWS::Scheduler::Schedule").create(ctx(deployment), "Schedule", props)


def test_alarm_and_dashboard_handlers(deployment):
    alarm = {"AlarmName": "sts-quality-accuracy", "Namespace": "stsmodelmonitor", "MetricName": "accuracy",
             "ComparisonOperator": "LessThanThreshold", "EvaluationPeriods": "1", "Threshold": "0.8", "Period": "3600",
             "Statistic": "Average"}
    result = handler_for("AWS::CloudWatch::Alarm").create(ctx(deployment), "Alarm", alarm)
    assert result.attributes["Arn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:sts-quality-accuracy"
    assert metrics.list_alarms(deployment.state)[0]["StateValue"] == "INSUFFICIENT_DATA"
    dash = handler_for("AWS::CloudWatch::Dashboard")
    result = dash.create(ctx(deployment), "Dash", {"DashboardName": "sts", "DashboardBody": json.dumps({"widgets": []})})
    assert json.loads((metrics.dashboards_dir(deployment.state) / "sts.json").read_text())["DashboardBody"] == {"widgets": []}
    with pytest.raises(StsmonError, match="DashboardBody of sts is not JSON"):
        dash.create(ctx(deployment), "Dash", {"DashboardName": "sts", "DashboardBody": "{nope"})
    dash.delete(ctx(deployment), "Dash", DeployedResource("Dash", "AWS::CloudWatch::Dashboard", "sts", {}))
    assert not (metrics.dashboards_dir(deployment.state) / "sts.json").exists()


def test_run_due_fires_at_the_scheduled_time_only_once_and_without_catch_up(deployment):
    handler_for("AWS::Scheduler::Schedule").create(ctx(deployment), "Schedule", schedule_props())
    calls = []

    def runner(state, parameters, *, pipeline, trigger):
        calls.append((pipeline, parameters, trigger))
        return FakeRun({"PipelineExecutionId": f"x{len(calls)}", "PipelineExecutionStatus": "Succeeded"})

    clock = FixedClock(T0)
    sched = scheduler.Scheduler(deployment.state, clock=clock, runner=runner)
    assert sched.run_due() == []  # first sight: the next fire time is 13:00
    assert scheduler.status(deployment.state, T0)["schedules"][0]["next"] == "2033-05-17T13:00:00Z"
    clock.set(T0 + timedelta(minutes=29))
    assert sched.run_due() == []
    clock.set(T0 + timedelta(minutes=30))
    fired = sched.run_due()
    assert [f["execution"] for f in fired] == ["x1"]
    assert calls == [(PIPELINE, {"PublishCloudWatch": "true"}, f"schedule:{SCHEDULE}")]
    assert scheduler.status(deployment.state, T0)["schedules"][0]["next"] == "2033-05-17T14:00:00Z"
    clock.set(T0 + timedelta(minutes=31))
    assert sched.run_due() == []
    clock.set(T0 + timedelta(hours=5))
    fired = sched.run_due()  # down for hours: one run, not five
    assert len(fired) == 1 and len(calls) == 2
    row = scheduler.status(deployment.state, T0)["schedules"][0]
    assert row["last_execution"] == "x2" and row["last_status"] == "Completed"
    assert row["next"] == "2033-05-17T18:00:00Z"


def test_a_run_that_outlasts_the_period_does_not_start_a_catch_up_run(deployment):
    """The next fire time after a run comes from the clock after the run, not from when it started."""
    handler_for("AWS::Scheduler::Schedule").create(ctx(deployment), "Schedule", schedule_props())
    clock = FixedClock(T0)

    def slow_runner(state, parameters, *, pipeline, trigger):
        clock.advance(timedelta(minutes=75))  # 13:00 -> 14:15: the 14:00 fire time passed during the run
        return FakeRun({"PipelineExecutionId": "slow", "PipelineExecutionStatus": "Succeeded"})

    sched = scheduler.Scheduler(deployment.state, clock=clock, runner=slow_runner)
    sched.run_due()
    clock.set(T0 + timedelta(minutes=30))
    assert len(sched.run_due()) == 1
    assert scheduler.status(deployment.state, clock.now())["schedules"][0]["next"] == "2033-05-17T15:00:00Z"
    assert sched.run_due() == []


def test_disabled_schedule_does_not_fire(deployment):
    handler_for("AWS::Scheduler::Schedule").create(ctx(deployment), "Schedule", schedule_props(state="DISABLED"))
    clock = FixedClock(T0)
    sched = scheduler.Scheduler(deployment.state, clock=clock, runner=lambda *a, **k: pytest.fail("fired"))
    assert sched.run_due() == []
    clock.advance(timedelta(days=1))
    assert sched.run_due() == []


@pytest.mark.slow
def test_an_hour_years_from_today_runs_end_to_end_on_the_injected_clock(deployment, local_clients):
    """Scheduler -> executor -> monitor.py -> ground truth -> metrics and alarms, on a clock in 2033.

    Captures and labels exist only in the clock's previous hour, so a wall-clock read anywhere in
    the chain (the fire time, Execution.StartDateTime, the window, the alarm's evaluation) moves
    the window to today's hour, where there is no data, and the run fails. The schedule's own
    parameters (PublishCloudWatch=true) hold locally too: monitor.py publishes to the local
    CloudWatch through the executor's job endpoint. Execution.StartDateTime reaches monitor.py
    in the executor's form (ISO-8601 UTC with milliseconds) and places the window.
    """
    clock = FixedClock(datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc), tick=timedelta(milliseconds=1))
    context = DeployContext(state=deployment.state, env=LocalEnvironment(), stack_name="sts-monitoring", clock=clock)
    handler_for("AWS::Scheduler::Schedule").create(context, "Schedule", schedule_props("rate(1 hour)"))
    dims = [{"Name": "Endpoint", "Value": ENDPOINT}, {"Name": "MonitoringSchedule", "Value": SCHEDULE}]
    handler_for("AWS::CloudWatch::Alarm").create(context, "Alarm", {
        "AlarmName": "sts-quality-accuracy", "Namespace": "stsmodelmonitor", "MetricName": "accuracy",
        "Dimensions": dims, "ComparisonOperator": "LessThanThreshold", "EvaluationPeriods": 1, "Threshold": 0.8,
        "Period": 3600, "Statistic": "Minimum", "TreatMissingData": "notBreaching"})

    # Traffic in the hour before the first fire time, labelled by the ground-truth writer with 30 % noise.
    hour = datetime(2033, 5, 17, 12, tzinfo=timezone.utc)
    window = write_window(deployment.capture_root, deployment.state.root / "unused-labels", hour, 400,
                          accuracy=0.95, endpoint=ENDPOINT)
    s3 = local_clients(deployment.state, clock=clock).s3
    captured = gt.read_captures(s3, CAPTURE_URI, ENDPOINT, hour, hour + timedelta(hours=1))
    truth = gt.Truth(labels=dict(zip(window.ids, window.y_true.tolist())), problem_type=names.BINARY_CLASSIFICATION, source="test")
    plan = gt.plan_labels(captured, "noise", truth=truth, error_rate=0.3, seed=7)
    uri = gt.write_labels(s3, GROUND_TRUTH_URI, plan.labels, clock.now(), clock.now())
    assert "/2033/05/17/12/" in uri

    sched = scheduler.Scheduler(deployment.state, clock=clock)
    assert sched.run_due() == []  # rate(1 hour) from its creation at 12:30: first fire at 13:30
    assert scheduler.status(deployment.state, clock.now())["schedules"][0]["next"] == "2033-05-17T13:30:00Z"
    clock.set(datetime(2033, 5, 17, 13, 30, tzinfo=timezone.utc))
    (fired,) = sched.run_due()
    assert fired["status"] == "CompletedWithViolations", fired

    (record,) = [json.loads(p.read_text()) for p in deployment.state.runs.glob("monitor-*.json")]
    assert record["trigger"] == f"schedule:{SCHEDULE}" and record["execution_status"] == "Succeeded"
    assert record["window"]["start"].startswith("2033-05-17T12:00") and record["window"]["end"].startswith("2033-05-17T13:00")
    assert record["counts"]["matched"] == 400
    assert record["created"].startswith("2033-05-17T13:30")
    assert metrics.MetricStore(deployment.state).published_by(f"{record['execution_id']}#")  # by the job itself
    assert "accuracy" in {v["metric_name"] for v in record["violations"]}
    (alarm,) = [a for a in metrics.list_alarms(deployment.state) if a["AlarmName"] == "sts-quality-accuracy"]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateUpdatedTimestamp"].startswith("2033-05-17T13:30")
    assert alarm["EvaluatedAt"].startswith("2033-05-17T1")
    assert scheduler.status(deployment.state, clock.now())["schedules"][0]["next"] == "2033-05-17T14:30:00Z"


@pytest.mark.slow
def test_the_process_starts_with_the_schedule_and_stops_with_it(deployment, monkeypatch, subprocess_env):
    monkeypatch.setenv("STSMON_SCHEDULER_AUTOSTART", "1")
    monkeypatch.setenv("PYTHONPATH", subprocess_env["PYTHONPATH"])
    handler = handler_for("AWS::Scheduler::Schedule")
    handler.create(ctx(deployment), "Schedule", schedule_props())
    try:
        info = scheduler.process_info(deployment.state)
        assert info and info["pid"] > 0
        assert scheduler.start(deployment.state)["pid"] == info["pid"]  # idempotent
        log = deployment.state.scheduler / "scheduler.log"
        for _ in range(300):  # up to 30 s on a loaded machine
            if log.exists() and "scheduler started" in log.read_text():
                break
            time.sleep(0.1)
        assert "scheduler started" in log.read_text()
        assert scheduler.status(deployment.state, T0)["running"]
    finally:
        handler.delete(ctx(deployment), "Schedule",
                       DeployedResource("Schedule", "AWS::Scheduler::Schedule", SCHEDULE, schedule_props()))
    assert scheduler.process_info(deployment.state) is None
    assert not (deployment.state.scheduler / "scheduler.json").exists()
    assert "scheduler stopped" in (deployment.state.scheduler / "scheduler.log").read_text()
