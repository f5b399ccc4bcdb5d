"""The botocore-model check around the local clients: it refuses what boto3 or AWS would refuse,
and what AWS would never return (stsmon/clients/validation.py)."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ParamValidationError
from botocore.response import StreamingBody

from stsmon.clients.validation import CallLog, LocalResponseInvalid, ValidatingClient, response_problems

WHEN = datetime(2033, 5, 17, 12, tzinfo=timezone.utc)
ARN = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/abc123"


class Canned:
    """A stand-in local client answering every call with a fixed response."""

    def __init__(self, response):
        self.response = response
        self.calls = []

    def __getattr__(self, name):
        def method(**params):
            self.calls.append((name, params))
            return self.response
        return method


@pytest.mark.parametrize("method, params, problem", [
    ("describe_pipeline_execution", {}, 'Missing required parameter in input: "PipelineExecutionArn"'),
    ("list_pipeline_execution_steps", {"PipelineExecutionArn": ARN, "Nope": 1}, 'Unknown parameter in input: "Nope"'),
    ("list_pipeline_execution_steps", {"PipelineExecutionArn": ARN, "SortOrder": "Sideways"}, "SortOrder.*one of Ascending"),
    ("list_pipeline_execution_steps", {"PipelineExecutionArn": ARN, "MaxResults": "10"}, "Invalid type for parameter MaxResults"),
    ("list_pipeline_execution_steps", {"PipelineExecutionArn": "exec-1"}, "PipelineExecutionArn.*a string matching arn:"),
    ("start_pipeline_execution", {"PipelineName": "p", "PipelineExecutionDisplayName": "monitor-schedule:x"},
     "PipelineExecutionDisplayName.*a string matching"),
    ("start_pipeline_execution", {"PipelineName": "p", "PipelineExecutionDisplayName": "x" * 83}, "at most 82 characters"),
])
def test_parameters_boto3_or_sagemaker_refuse_are_refused_before_the_call(method, params, problem):
    inner = Canned({})
    client = ValidatingClient(inner, "sagemaker")
    with pytest.raises(ParamValidationError, match=problem):
        getattr(client, method)(**params)
    assert inner.calls == []


@pytest.mark.parametrize("response, problem", [
    ({"PipelineExecutionArn": ARN, "CreationTime": "2033-05-17T12:00:00Z"}, "CreationTime.*timezone-aware datetime"),
    ({"PipelineExecutionArn": ARN, "CreationTime": datetime(2033, 5, 17)}, "CreationTime.*timezone-aware datetime"),
    ({"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Running"}, "PipelineExecutionStatus.*one of Executing"),
    ({"PipelineExecutionArn": ARN, "Steps": []}, 'Unknown parameter in input: "Steps"'),
])
def test_a_response_aws_would_not_send_is_a_fault_of_the_local_runtime(response, problem):
    client = ValidatingClient(Canned(response), "sagemaker")
    with pytest.raises(LocalResponseInvalid, match=problem):
        client.describe_pipeline_execution(PipelineExecutionArn=ARN)


def test_required_members_and_streaming_bodies_are_checked():
    assert response_problems("cloudformation", "describe_stacks", {"Stacks": [{"StackName": "s"}]}) == [
        'Missing required parameter in Stacks[0]: "CreationTime"', 'Missing required parameter in Stacks[0]: "StackStatus"']
    assert response_problems("s3", "get_object", {"Body": b"raw bytes"}) == [
        "Invalid type for parameter Body, value: b'raw bytes', type: <class 'bytes'>, valid types: botocore.response.StreamingBody"]
    assert response_problems("s3", "get_object", {"Body": StreamingBody(io.BytesIO(b"x"), 1), "LastModified": WHEN}) == []


def test_every_call_is_recorded_with_its_outcome():
    log = CallLog()
    client = ValidatingClient(Canned({"Stacks": []}), "cloudformation", log=log)
    client.describe_stacks(StackName="sts-foundation")
    with pytest.raises(ParamValidationError):
        client.describe_stacks(Stack="x")
    assert log.calls == [{"service": "cloudformation", "method": "describe_stacks", "params": ["StackName"],
                          "response_valid": True}]
    assert log.operations() == {"cloudformation.describe_stacks"}


def test_a_method_the_local_runtime_lacks_fails_loudly():
    class Empty:
        pass

    client = ValidatingClient(Empty(), "sagemaker")
    with pytest.raises(NotImplementedError, match="does not implement sagemaker.create_endpoint"):
        client.create_endpoint(EndpointName="e", EndpointConfigName="c")
    with pytest.raises(AttributeError, match="no method 'not_an_operation'"):
        client.not_an_operation


def test_paginators_follow_botocores_tokens():
    pages = iter([{"PipelineExecutionSummaries": [{"PipelineExecutionArn": ARN + "a"}], "NextToken": "t1"},
                  {"PipelineExecutionSummaries": [{"PipelineExecutionArn": ARN + "b"}]}])
    seen = []

    class Paged:
        def list_pipeline_executions(self, **params):
            seen.append(params)
            return next(pages)

    client = ValidatingClient(Paged(), "sagemaker")
    got = [s["PipelineExecutionArn"] for page in client.get_paginator("list_pipeline_executions").paginate(
        PipelineName="p", PaginationConfig={"PageSize": 1}) for s in page["PipelineExecutionSummaries"]]
    assert got == [ARN + "a", ARN + "b"]
    assert seen == [{"PipelineName": "p", "MaxResults": 1}, {"PipelineName": "p", "MaxResults": 1, "NextToken": "t1"}]
