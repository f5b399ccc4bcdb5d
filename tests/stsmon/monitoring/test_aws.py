"""The monitoring run and the report's listing (stsmon.monitoring.runs) against AWS: the same code the
local tests run (test_runs.py), with boto3 clients under botocore's Stubber (no AWS account)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from stscontracts.documents import DocumentError
from stsmon.errors import StsmonError
from stsmon.monitoring import runs

ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipelinemonitoring/execution/abc123"
JOB = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-abc123-monitormodelquality-x1"
OUT = "s3://bkt/sts/monitoring/sts-model-quality/abc123"
CREATED = datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc)
#: A monitoring_result.json as monitor.py writes it (the reader validates it against its schema).
RESULT = {"status": "CompletedWithViolations", "failure_reason": "", "problem_type": "BinaryClassification",
          "execution_time": "2026-11-27T13:05:00.000Z",
          "window": {"start": "2026-11-27T12:00:00Z", "end": "2026-11-27T13:00:00Z"},
          "endpoint_name": "sts-endpoint", "schedule_name": "sts-model-quality",
          "counts": {"captured": 5, "labelled": 5, "matched": 5}, "label_coverage": 1.0, "metrics": {"accuracy": 0.6},
          "constraints": {"accuracy": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}},
          "violations": [{"metric_name": "accuracy", "constraint_check_type": "LessThanThreshold", "description": "d"}]}


@pytest.fixture
def stubbed(aws_clients, boto_client):
    sm, s3, cw = boto_client("sagemaker"), boto_client("s3"), boto_client("cloudwatch")
    with Stubber(sm) as sms, Stubber(s3) as s3s, Stubber(cw) as cws:
        yield aws_clients({"sagemaker": sm, "s3": s3, "cloudwatch": cw}), sms, s3s, cws
        for stub in (sms, s3s, cws):
            stub.assert_no_pending_responses()


def body(data: dict) -> StreamingBody:
    raw = json.dumps(data).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def job(status: str, **extra) -> dict:
    return {"ProcessingJobName": "pipelines-abc123-monitormodelquality-x1", "ProcessingJobArn": JOB,
            "ProcessingJobStatus": status, "CreationTime": CREATED, "AppSpecification": {"ImageUri": "img"},
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring", "S3Output": {
                "S3Uri": OUT, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]}, **extra}


def alarms(cws, changed: bool) -> None:
    cws.add_response("describe_alarms", {"MetricAlarms": [
        {"AlarmName": "sts-quality-accuracy", "StateValue": "ALARM", "StateReason": "Threshold Crossed",
         "MetricName": "accuracy", "Threshold": 0.72, "ComparisonOperator": "LessThanThreshold"},
        {"AlarmName": "sts-endpoint-5xx", "StateValue": "OK", "MetricName": "Invocation5XXErrors"}]},
        {"AlarmNamePrefix": "sts-", "AlarmTypes": ["MetricAlarm"]})
    history = [{"AlarmName": "sts-quality-accuracy", "Timestamp": CREATED, "HistoryItemType": "StateUpdate",
                "HistorySummary": "Alarm updated from OK to ALARM",
                "HistoryData": json.dumps({"oldState": {"stateValue": "OK"}, "newState": {"stateValue": "ALARM"}})}]
    cws.add_response("describe_alarm_history", {"AlarmHistoryItems": history if changed else []},
                     {"AlarmName": "sts-quality-accuracy", "HistoryItemType": "StateUpdate", "StartDate": CREATED,
                      "ScanBy": "TimestampAscending"})


def test_run_starts_waits_and_reads_result_and_alarm_changes(stubbed):
    clients, sms, s3s, cws = stubbed
    step = {"StepName": "MonitorModelQuality", "StepStatus": "Executing", "Metadata": {"ProcessingJob": {"Arn": JOB}}}
    sms.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN},
                     {"PipelineName": "stsPipelineMonitoring", "PipelineExecutionDisplayName": "monitor-manual-20330517T123000",
                      "PipelineParameters": [{"Name": "WindowEnd", "Value": "2026-11-27T13:00:00Z"}]})
    sms.add_response("describe_pipeline_execution", {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Executing"})
    sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [step]},
                     {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"})
    sms.add_response("describe_pipeline_execution", {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Succeeded",
                                                     "CreationTime": CREATED})
    sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [dict(step, StepStatus="Succeeded")]})
    sms.add_response("describe_processing_job", job("Completed"), {"ProcessingJobName": "pipelines-abc123-monitormodelquality-x1"})
    s3s.add_response("get_object", {"Body": body(RESULT)},
                     {"Bucket": "bkt", "Key": "sts/monitoring/sts-model-quality/abc123/monitoring_result.json"})
    alarms(cws, changed=True)
    seen, slept = [], []
    run = runs.run_now(clients, "stsPipelineMonitoring", {"WindowEnd": "2026-11-27T13:00:00Z"},
                       alarm_prefixes=("sts-quality-", "sts-monitor-"), sleep=slept.append,
                       on_step=lambda s: seen.append(s["StepStatus"]))
    assert run.result == RESULT and run.output_uri == OUT and run.execution_id == "abc123"
    assert seen == ["Executing", "Succeeded"] and slept == [15.0]
    assert run.alarms == [{"name": "sts-quality-accuracy", "metric": "accuracy", "state": "ALARM", "reason": "Threshold Crossed",
                           "threshold": 0.72, "comparison": "LessThanThreshold", "changed": True, "previous": "OK"}]


def test_a_failed_window_reads_the_jobs_exit_message(stubbed):
    """A Failed window fails the job (monitor.py exits 3): the reason is the processing job's ExitMessage
    (/opt/ml/output/message, DescribeProcessingJob); its EndOfJob outputs are not read."""
    clients, sms, s3s, cws = stubbed
    step = {"StepName": "MonitorModelQuality", "StepStatus": "Failed", "Metadata": {"ProcessingJob": {"Arn": JOB}},
            "FailureReason": "AlgorithmError: See job logs for more information"}
    sms.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN})
    sms.add_response("describe_pipeline_execution", {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Failed",
                                                     "FailureReason": "Step failure: One or multiple steps failed.",
                                                     "CreationTime": CREATED})
    sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [step]})
    sms.add_response("describe_processing_job", job("Failed", ExitMessage=(
        "monitoring Failed: no capture records in the window [2026-11-27T12:00:00Z, 2026-11-27T13:00:00Z)")))
    alarms(cws, changed=False)
    run = runs.run_now(clients, "stsPipelineMonitoring", {}, alarm_prefixes=("sts-quality-", "sts-monitor-"), sleep=lambda s: None)
    assert run.result is None and run.output_uri is None and run.status == "Failed"
    assert run.failure_reason == "no capture records in the window [2026-11-27T12:00:00Z, 2026-11-27T13:00:00Z)"
    assert [(a["name"], a["changed"]) for a in run.alarms] == [("sts-quality-accuracy", False)]


def test_a_refused_start_is_a_message(stubbed):
    clients, sms, _, _ = stubbed
    sms.add_client_error("start_pipeline_execution", "ResourceNotFound", "Pipeline stsPipelineMonitoring does not exist")
    with pytest.raises(StsmonError, match="start_pipeline_execution.stsPipelineMonitoring.*does not exist"):
        runs.run_now(clients, "stsPipelineMonitoring", {}, alarm_prefixes=("sts-",), sleep=lambda s: None)


def test_the_report_lists_executions_with_their_results(stubbed):
    """Succeeded runs: {MonitoringOutputUri}/{execution id}/monitoring_result.json; a failed one: its job's reason."""
    clients, sms, s3s, _ = stubbed
    base = ARN.rsplit("/", 1)[0] + "/"
    older = dict(RESULT, status="Completed", violations=[])
    sms.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
        {"PipelineExecutionArn": base + "e3", "PipelineExecutionStatus": "Executing"},
        {"PipelineExecutionArn": base + "e2", "PipelineExecutionStatus": "Failed", "PipelineExecutionFailureReason": "x"},
        {"PipelineExecutionArn": base + "e1", "PipelineExecutionStatus": "Succeeded"}]},
        {"PipelineName": "stsPipelineMonitoring", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100})
    s3s.add_response("get_object", {"Body": body(older)}, {"Bucket": "bkt", "Key": "sts/monitoring/sch/e1/monitoring_result.json"})
    step = {"StepName": "MonitorModelQuality", "StepStatus": "Failed", "Metadata": {"ProcessingJob": {"Arn": JOB}}}
    sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [step]},
                     {"PipelineExecutionArn": base + "e2", "SortOrder": "Ascending"})
    sms.add_response("describe_processing_job", job("Failed", ExitMessage="monitoring Failed: no labels"))
    listed = runs.list_runs(clients, "stsPipelineMonitoring", output_uri="s3://bkt/sts/monitoring/sch/")
    assert [(r.execution_id, r.status, r.failure_reason) for r in listed] == [("e1", "Completed", ""), ("e2", "Failed", "no labels")]
    assert listed[0].output_uri == "s3://bkt/sts/monitoring/sch/e1"


def test_a_result_that_breaks_its_schema_is_refused_naming_the_file(stubbed):
    """monitoring_result.json is read against stscontracts/schemas/monitoring-result.schema.json: a
    result from a monitor of another version fails with the file and the problem, not a KeyError later."""
    clients, _, s3s, _ = stubbed
    s3s.add_response("get_object", {"Body": body(dict(RESULT, status="Done"))},
                     {"Bucket": "bkt", "Key": "sts/monitoring/sts-model-quality/abc123/monitoring_result.json"})
    with pytest.raises(DocumentError, match=r"abc123/monitoring_result.json: not a valid monitoring-result: "
                                            r"status: 'Done' is not one of"):
        runs.read_result(clients, OUT)
