"""The local S3, CloudFormation, CloudWatch and Scheduler clients: boto3's shapes (checked against botocore's
model by the wrapper on every call), and the same answers as AWS where moto stands in for it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from stsmon.localcloud.deployer import record_path
from stsmon.localcloud.plan import StackRecord
from stsmon.monitoring import metrics, scheduler
from stsmon.state import StateDir

KEYS = ["a/1.jsonl", "a/2.jsonl", "a/b/3.jsonl", "a/b/4.jsonl", "a/c/5.jsonl", "z.txt", "ü/6"]


@pytest.fixture
def state(tmp_path) -> StateDir:
    return StateDir(tmp_path / "state")


@pytest.fixture
def both_s3(state, local_clients):
    """(local S3, moto S3), each with bucket ``bkt`` holding :data:`KEYS`."""
    (state.s3_root / "bkt").mkdir(parents=True)
    local = local_clients(state).s3
    with mock_aws():
        aws = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        aws.create_bucket(Bucket="bkt")
        for client in (local, aws):
            for key in KEYS:
                client.put_object(Bucket="bkt", Key=key, Body=key.encode())
        yield local, aws


def _listing(client, **params):
    pages = list(client.get_paginator("list_objects_v2").paginate(Bucket="bkt", **params))
    return ([[o["Key"] for o in p.get("Contents", [])] for p in pages],
            [[c["Prefix"] for c in p.get("CommonPrefixes", [])] for p in pages],
            [(p["KeyCount"], p["IsTruncated"]) for p in pages])


@pytest.mark.parametrize("params", [
    {}, {"Prefix": "a/"}, {"Prefix": "a/", "Delimiter": "/"}, {"Delimiter": "/"},
    {"Prefix": "a/", "PaginationConfig": {"PageSize": 2}}, {"Prefix": "a/", "Delimiter": "/", "PaginationConfig": {"PageSize": 1}},
    {"StartAfter": "a/b/3.jsonl"}, {"Prefix": "nothing/"},
])
def test_listings_page_like_s3(both_s3, params):
    local, aws = both_s3
    assert _listing(local, **params) == _listing(aws, **params)


def test_objects_read_back_and_errors_carry_s3s_codes(both_s3):
    local, aws = both_s3
    for client in (local, aws):
        got = client.get_object(Bucket="bkt", Key="a/b/3.jsonl")
        assert got["Body"].read() == b"a/b/3.jsonl" and got["ContentLength"] == len(b"a/b/3.jsonl")
        with pytest.raises(ClientError) as missing:
            client.get_object(Bucket="bkt", Key="a/none")
        assert missing.value.response["Error"]["Code"] == "NoSuchKey"
        with pytest.raises(ClientError) as no_bucket:
            client.list_objects_v2(Bucket="nobkt")
        assert no_bucket.value.response["Error"]["Code"] == "NoSuchBucket"
        client.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "z.txt"}, {"Key": "never"}], "Quiet": True})
        assert "z.txt" not in [o["Key"] for o in client.list_objects_v2(Bucket="bkt")["Contents"]]


def _deploy_record(state: StateDir, name: str, outputs: dict) -> None:
    record = StackRecord(stack_name=name, artifact_id=name, region="us-east-1", account="000000000000",
                         deployed_at="2033-05-17T12:00:00+00:00", assembly="", parameters={}, resources={}, order=[],
                         outputs=outputs, exports={}, imports=[])
    path = record_path(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json()))


def test_stack_outputs_are_strings_and_a_missing_stack_is_cloudformations_error(state, local_clients):
    """A stack that is not deployed: ``ValidationError`` "Stack with id NAME does not exist", CloudFormation's
    answer (quoted by rubyonjets/jets, lib/jets/aws_services/aws_helpers.rb, which matches on it; moto's
    cloudformation backend needs openapi-spec-validator, not installed here)."""
    _deploy_record(state, "sts-training", {"TrainingPipelineName": "stsPipeline", "Count": 3})
    cfn = local_clients(state).cloudformation
    (stack,) = cfn.describe_stacks(StackName="sts-training")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["CreationTime"] == datetime(2033, 5, 17, 12, tzinfo=timezone.utc)
    assert stack["Outputs"] == [{"OutputKey": "TrainingPipelineName", "OutputValue": "stsPipeline"},
                                {"OutputKey": "Count", "OutputValue": "3"}]
    with pytest.raises(ClientError) as missing:
        cfn.describe_stacks(StackName="sts-serving")
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert missing.value.response["Error"]["Message"] == "Stack with id sts-serving does not exist"


def test_alarms_and_their_history_as_cloudwatch_describes_them(state, local_clients, clock):
    # As CloudFormation passes them: numbers may arrive as strings.
    metrics.save_alarm(state, "sts-quality-accuracy", "arn:aws:cloudwatch:us-east-1:000000000000:alarm:sts-quality-accuracy", {
        "MetricName": "accuracy", "Namespace": "stsmodelmonitor", "Statistic": "Minimum", "Period": "3600",
        "EvaluationPeriods": 1, "Threshold": "0.8", "ComparisonOperator": "LessThanThreshold",
        "TreatMissingData": "notBreaching", "Dimensions": [{"Name": "Endpoint", "Value": "sts-endpoint"}]}, now=clock.now())
    cloudwatch = local_clients(state).cloudwatch
    start = clock.now()
    cloudwatch.put_metric_data(Namespace="stsmodelmonitor", MetricData=[{
        "MetricName": "accuracy", "Dimensions": [{"Name": "Endpoint", "Value": "sts-endpoint"}],
        "Timestamp": clock.now() - timedelta(minutes=5), "Value": 0.6}])
    (alarm,) = cloudwatch.describe_alarms(AlarmNamePrefix="sts-quality-")["MetricAlarms"]
    assert (alarm["StateValue"], alarm["Period"], alarm["Threshold"]) == ("ALARM", 3600, 0.8)
    assert cloudwatch.describe_alarms(AlarmNamePrefix="sts-monitor-")["MetricAlarms"] == []
    (item,) = cloudwatch.describe_alarm_history(AlarmName="sts-quality-accuracy", HistoryItemType="StateUpdate",
                                                StartDate=start)["AlarmHistoryItems"]
    assert item["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert json.loads(item["HistoryData"])["newState"]["stateValue"] == "ALARM"
    assert cloudwatch.describe_alarm_history(AlarmName="sts-quality-accuracy", StartDate=clock.now() + timedelta(seconds=1))["AlarmHistoryItems"] == []


def test_schedules_as_eventbridge_scheduler_returns_them(state, local_clients):
    scheduler.save_schedule(state, {
        "Name": "sts-model-quality", "GroupName": "default", "Arn": "arn:aws:scheduler:us-east-1:000000000000:schedule/default/sts-model-quality",
        "ScheduleExpression": "cron(0 * ? * * *)", "ScheduleExpressionTimezone": "UTC", "State": "ENABLED",
        "TargetArn": "arn:aws:sagemaker:us-east-1:000000000000:pipeline/stspipelinemonitoring",
        "RoleArn": "arn:aws:iam::000000000000:role/sts-scheduler", "PipelineName": "stsPipelineMonitoring",
        "Parameters": {"PublishCloudWatch": "true"}, "CreatedAt": "2033-05-17T12:00:00Z"})
    client = local_clients(state).scheduler
    got = client.get_schedule(Name="sts-model-quality")
    assert got["State"] == "ENABLED" and got["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert got["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"] == [{"Name": "PublishCloudWatch", "Value": "true"}]
    assert [s["Name"] for s in client.list_schedules()["Schedules"]] == ["sts-model-quality"]
    with pytest.raises(ClientError) as missing:
        client.get_schedule(Name="other")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
