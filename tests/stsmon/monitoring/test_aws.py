"""--target aws for monitor run and report, against botocore Stubber (no AWS account)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from stsmon.errors import StsmonError
from stsmon.monitoring.aws import run_aws_monitoring
from stsmon.monitoring.aws_report import aws_results

T_RUN = datetime(2033, 5, 17, 12, 30, 5, tzinfo=timezone.utc)

ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipelinemonitoring/execution/abc123"
JOB = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-abc123-monitormodelquality-x1"
OUT = "s3://bkt/sts/monitoring/sts-model-quality/abc123"
RESULT = {"status": "CompletedWithViolations", "failure_reason": "", "window": {"start": "2026-11-27T12:00:00Z",
          "end": "2026-11-27T13:00:00Z"}, "counts": {"captured": 5}, "metrics": {"accuracy": 0.6},
          "violations": [{"metric_name": "accuracy", "constraint_check_type": "LessThanThreshold", "description": "d"}]}


def clients():
    kw = dict(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return boto3.client("sagemaker", **kw), boto3.client("s3", **kw), boto3.client("cloudwatch", **kw)


def body(data: dict) -> StreamingBody:
    raw = json.dumps(data).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def alarm_response():
    return {"MetricAlarms": [{"AlarmName": "sts-quality-accuracy", "StateValue": "ALARM", "StateReason": "Threshold Crossed",
                              "MetricName": "accuracy", "Threshold": 0.72, "ComparisonOperator": "LessThanThreshold"}]}


def test_run_starts_waits_and_reads_result_and_alarms():
    sm, s3, cw = clients()
    step = {"StepName": "MonitorModelQuality", "StepStatus": "Executing", "Metadata": {"ProcessingJob": {"Arn": JOB}}}
    with Stubber(sm) as sms, Stubber(s3) as s3s, Stubber(cw) as cws:
        sms.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN},
                         {"PipelineName": "stsPipelineMonitoring", "PipelineExecutionDisplayName": "monitor-manual-20330517T123005",
                          "PipelineParameters": [{"Name": "WindowEnd", "Value": "2026-11-27T13:00:00Z"}]})
        sms.add_response("describe_pipeline_execution", {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Executing"})
        sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [step]})
        sms.add_response("describe_pipeline_execution", {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Succeeded"})
        sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [dict(step, StepStatus="Succeeded")]})
        sms.add_response("describe_processing_job", {
            "ProcessingJobName": "pipelines-abc123-monitormodelquality-x1", "ProcessingJobArn": JOB,
            "ProcessingJobStatus": "Completed", "CreationTime": datetime(2026, 11, 27, tzinfo=timezone.utc),
            "AppSpecification": {"ImageUri": "img"}, "RoleArn": "arn:aws:iam::123456789012:role/r",
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring", "S3Output": {
                "S3Uri": OUT, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]}},
            {"ProcessingJobName": "pipelines-abc123-monitormodelquality-x1"})
        s3s.add_response("get_object", {"Body": body(RESULT)}, {"Bucket": "bkt", "Key": "sts/monitoring/sts-model-quality/abc123/monitoring_result.json"})
        cws.add_response("describe_alarms", alarm_response(), {"AlarmNamePrefix": "sts-quality-", "AlarmTypes": ["MetricAlarm"]})
        seen, slept = [], []
        out = run_aws_monitoring(sm, s3, cw, pipeline="stsPipelineMonitoring", parameters={"WindowEnd": "2026-11-27T13:00:00Z"},
                                 alarm_prefix="sts-quality-", on_step=lambda s: seen.append(s["StepStatus"]), sleep=slept.append, now=T_RUN)
    assert out["result"] == RESULT and out["output_uri"] == OUT
    assert seen == ["Executing", "Succeeded"] and slept == [15.0]
    assert out["alarms"][0]["state"] == "ALARM"


def test_a_failed_window_reads_the_jobs_exit_message():
    """A Failed window fails the job (monitor.py exits 3): the reason is the processing job's ExitMessage
    (/opt/ml/output/message, DescribeProcessingJob); its EndOfJob outputs may not be in S3."""
    sm, s3, cw = clients()
    step = {"StepName": "MonitorModelQuality", "StepStatus": "Failed", "Metadata": {"ProcessingJob": {"Arn": JOB}},
            "FailureReason": "AlgorithmError: See job logs for more information"}
    with Stubber(sm) as sms, Stubber(s3) as s3s, Stubber(cw) as cws:
        sms.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN})
        sms.add_response("describe_pipeline_execution", {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Failed",
                                                         "FailureReason": "Step failure: One or multiple steps failed."})
        sms.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [step]})
        sms.add_response("describe_processing_job", {
            "ProcessingJobName": "pipelines-abc123-monitormodelquality-x1", "ProcessingJobArn": JOB,
            "ProcessingJobStatus": "Failed", "CreationTime": datetime(2026, 11, 27, tzinfo=timezone.utc),
            "ExitMessage": "monitoring Failed: no capture records in the window [2026-11-27T12:00:00Z, 2026-11-27T13:00:00Z)",
            "AppSpecification": {"ImageUri": "img"}, "RoleArn": "arn:aws:iam::123456789012:role/r",
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring", "S3Output": {
                "S3Uri": OUT, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]}})
        s3s.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
        cws.add_response("describe_alarms", {"MetricAlarms": [
            {"AlarmName": "sts-monitor-no-result", "StateValue": "ALARM", "MetricName": "monitoring_failed"}]})
        out = run_aws_monitoring(sm, s3, cw, pipeline="stsPipelineMonitoring", parameters={}, alarm_prefix="sts-",
                                 sleep=lambda s: None, now=T_RUN)
    assert out["result"] is None and out["output_uri"] is None
    assert out["exit_message"].startswith("monitoring Failed: no capture records in the window")
    assert out["alarms"][0]["name"] == "sts-monitor-no-result"


def test_start_failure_is_a_message():
    sm, s3, cw = clients()
    with Stubber(sm) as sms:
        sms.add_client_error("start_pipeline_execution", "ResourceNotFound", "Pipeline does not exist")
        with pytest.raises(StsmonError, match="starting pipeline stsPipelineMonitoring failed.*does not exist"):
            run_aws_monitoring(sm, s3, cw, pipeline="stsPipelineMonitoring", parameters={}, alarm_prefix="p", now=T_RUN)


def test_report_reads_every_result_in_s3():
    _, s3, cw = clients()
    older = dict(RESULT, status="Completed", violations=[], window={"start": "2026-11-27T11:00:00Z", "end": "2026-11-27T12:00:00Z"})
    with Stubber(s3) as s3s, Stubber(cw) as cws:
        s3s.add_response("list_objects_v2", {"Contents": [
            {"Key": "sts/monitoring/sch/e2/monitoring_result.json", "LastModified": datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)},
            {"Key": "sts/monitoring/sch/e2/report.html", "LastModified": datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)},
            {"Key": "sts/monitoring/sch/e1/monitoring_result.json", "LastModified": datetime(2026, 11, 27, 12, 5, tzinfo=timezone.utc)},
        ], "IsTruncated": False}, {"Bucket": "bkt", "Prefix": "sts/monitoring/sch/"})
        s3s.add_response("get_object", {"Body": body(older)}, {"Bucket": "bkt", "Key": "sts/monitoring/sch/e1/monitoring_result.json"})
        s3s.add_response("get_object", {"Body": body(RESULT)}, {"Bucket": "bkt", "Key": "sts/monitoring/sch/e2/monitoring_result.json"})
        cws.add_response("describe_alarms", alarm_response(), {"AlarmNamePrefix": "sts-quality-", "AlarmTypes": ["MetricAlarm"]})
        runs, alarms = aws_results(s3, cw, "s3://bkt/sts/monitoring/sch", "sts-quality-")
    assert [(r.execution_id, r.status) for r in runs] == [("e1", "Completed"), ("e2", "CompletedWithViolations")]
    assert runs[1].report_path == "s3://bkt/sts/monitoring/sch/e2/report.html"
    assert alarms == [{"AlarmName": "sts-quality-accuracy", "StateValue": "ALARM", "StateReason": "Threshold Crossed",
                       "Definition": {"MetricName": "accuracy"}}]
