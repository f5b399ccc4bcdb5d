"""The custom-resource Lambdas (stacks/lambdas), against botocore Stubber clients."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

LAMBDAS = Path(__file__).resolve().parents[2] / "stacks" / "lambdas"
sys.path.insert(0, str(LAMBDAS))

import approved_package  # noqa: E402
import cfn_response  # noqa: E402
import cleanup  # noqa: E402

GROUP = "stsPackageGroup"
ARN = "arn:aws:sagemaker:us-east-1:000000000000:model-package/stspackagegroup/7"
CONSTRAINTS = "s3://sts-artifacts-000000000000-us-east-1/sts/pipelines/exec1/Baseline/baseline/constraints.json"


def client(service):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def package_description(arn=ARN):
    return {
        "ModelPackageArn": arn,
        "ModelPackageName": GROUP,
        "ModelPackageVersion": 7,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CreationTime": "2026-11-27T00:00:00Z",
        "InferenceSpecification": {
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "DriftCheckBaselines": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": CONSTRAINTS.replace("constraints", "statistics")},
                "Constraints": {"ContentType": "application/json", "S3Uri": CONSTRAINTS},
            }
        },
    }


def stub_constraints(s3_stub, document):
    body = json.dumps(document).encode()
    from botocore.response import StreamingBody

    s3_stub.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(body), len(body))},
        {"Bucket": "sts-artifacts-000000000000-us-east-1", "Key": "sts/pipelines/exec1/Baseline/baseline/constraints.json"},
    )


CONSTRAINTS_DOC = {
    "version": 0.0,
    "binary_classification_constraints": {
        "accuracy": {"threshold": 0.71, "comparison_operator": "LessThanThreshold"},
        "f1": {"threshold": 0.75, "comparison_operator": "LessThanThreshold"},
    },
}


def test_latest_approved_package_with_thresholds_from_its_constraints():
    sm, s3 = client("sagemaker"), client("s3")
    with Stubber(sm) as sm_stub, Stubber(s3) as s3_stub:
        sm_stub.add_response(
            "list_model_packages",
            {"ModelPackageSummaryList": [{"ModelPackageArn": ARN, "ModelPackageStatus": "Completed", "CreationTime": "2026-11-27T00:00:00Z"}]},
            {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1},
        )
        sm_stub.add_response("describe_model_package", package_description(), {"ModelPackageName": ARN})
        stub_constraints(s3_stub, CONSTRAINTS_DOC)
        physical_id, data = approved_package.handle(
            "Create", {"ModelPackageGroupName": GROUP, "MetricNames": ["accuracy", "f1", "auc"], "Refresh": ""}, {}, sagemaker=sm, s3=s3
        )
    assert physical_id == f"{GROUP}-served-package"
    assert data["ModelPackageArn"] == ARN and data["ModelPackageVersion"] == "7"
    assert data["BaselineConstraintsUri"] == CONSTRAINTS
    assert data["BaselineUri"] == CONSTRAINTS.rsplit("/", 1)[0] + "/"
    assert (data["accuracyThreshold"], data["accuracyComparison"]) == ("0.71", "LessThanThreshold")
    assert data["f1Threshold"] == "0.75"
    # A metric the constraints lack gets a threshold that never alarms.
    assert data["aucComparison"] == "LessThanThreshold" and float(data["aucThreshold"]) < -1e29


def test_pinned_package_skips_the_search():
    sm, s3 = client("sagemaker"), client("s3")
    pinned = ARN.replace("/7", "/3")
    with Stubber(sm) as sm_stub, Stubber(s3) as s3_stub:
        sm_stub.add_response("describe_model_package", package_description(pinned), {"ModelPackageName": pinned})
        stub_constraints(s3_stub, CONSTRAINTS_DOC)
        _, data = approved_package.handle("Update", {"ModelPackageGroupName": GROUP, "ModelPackageArn": pinned, "MetricNames": []}, {}, sagemaker=sm, s3=s3)
    assert data["ModelPackageArn"] == pinned


def test_endpoint_mode_follows_what_the_endpoint_serves():
    sm, s3 = client("sagemaker"), client("s3")
    with Stubber(sm) as sm_stub, Stubber(s3) as s3_stub:
        sm_stub.add_response("describe_endpoint", {
            "EndpointName": "sts-endpoint", "EndpointArn": "arn:aws:sagemaker:us-east-1:000000000000:endpoint/sts-endpoint",
            "EndpointConfigName": "cfg-1", "EndpointStatus": "InService", "CreationTime": "2026-11-27T00:00:00Z",
            "LastModifiedTime": "2026-11-27T00:00:00Z"}, {"EndpointName": "sts-endpoint"})
        sm_stub.add_response("describe_endpoint_config", {
            "EndpointConfigName": "cfg-1", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg-1",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "model-1"}],
            "CreationTime": "2026-11-27T00:00:00Z"}, {"EndpointConfigName": "cfg-1"})
        sm_stub.add_response("describe_model", {
            "ModelName": "model-1", "ModelArn": "arn:aws:sagemaker:us-east-1:000000000000:model/model-1",
            "Containers": [{"ModelPackageName": ARN}], "CreationTime": "2026-11-27T00:00:00Z"}, {"ModelName": "model-1"})
        sm_stub.add_response("describe_model_package", package_description(), {"ModelPackageName": ARN})
        stub_constraints(s3_stub, CONSTRAINTS_DOC)
        _, data = approved_package.handle("Create", {"ModelPackageGroupName": GROUP, "EndpointName": "sts-endpoint", "MetricNames": ["accuracy"]}, {}, sagemaker=sm, s3=s3)
    assert data["ModelPackageArn"] == ARN and data["accuracyThreshold"] == "0.71"


def test_no_approved_package_is_a_clear_failure():
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
        with pytest.raises(cfn_response.UserFacingError, match="No Approved model package in group stsPackageGroup.*MODEL_PACKAGE_ARN"):
            approved_package.handle("Create", {"ModelPackageGroupName": GROUP}, {}, sagemaker=sm, s3=client("s3"))


def test_delete_is_a_no_op():
    assert approved_package.handle("Delete", {"ModelPackageGroupName": GROUP}, {}, sagemaker=object(), s3=object()) == (f"{GROUP}-served-package", {})


def test_cleanup_stops_running_executions_then_deletes_every_package():
    sm = client("sagemaker")
    running = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/stspipeline/execution/abc"
    done = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/stspipeline/execution/old"
    with Stubber(sm) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
            {"PipelineExecutionArn": running, "PipelineExecutionStatus": "Executing"},
            {"PipelineExecutionArn": done, "PipelineExecutionStatus": "Succeeded"},
        ]}, {"PipelineName": "stsPipeline", "MaxResults": 100})
        stub.add_response("stop_pipeline_execution", {"PipelineExecutionArn": running}, {"PipelineExecutionArn": running})
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Stopping"}, {"PipelineExecutionArn": running})
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Stopped"}, {"PipelineExecutionArn": running})
        packages = [{"ModelPackageArn": ARN.replace("/7", f"/{n}"), "ModelPackageStatus": "Completed", "CreationTime": "2026-11-27T00:00:00Z"} for n in (1, 2)]
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": packages}, {"ModelPackageGroupName": GROUP, "MaxResults": 100})
        for package in packages:
            stub.add_response("delete_model_package", {}, {"ModelPackageName": package["ModelPackageArn"]})
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []}, {"ModelPackageGroupName": GROUP, "MaxResults": 100})
        sleeps = []
        _, data = cleanup.handle(
            "Delete", {"PipelineNames": ["stsPipeline"], "ModelPackageGroupName": GROUP}, {},
            sagemaker=sm, remaining_ms=lambda: 600_000, sleep=sleeps.append,
        )
        stub.assert_no_pending_responses()
    assert data == {"StoppedExecutions": "1", "DeletedModelPackages": "2"}
    assert sleeps == [cleanup.POLL_SECONDS]


def test_cleanup_tolerates_a_pipeline_that_is_already_gone_and_ignores_create():
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_client_error("list_pipeline_executions", "ResourceNotFound", "Pipeline does not exist")
        _, data = cleanup.handle("Delete", {"PipelineNames": ["gone"]}, {}, sagemaker=sm, sleep=lambda s: None)
    assert data == {"StoppedExecutions": "0", "DeletedModelPackages": "0"}
    assert cleanup.handle("Create", {"PipelineNames": ["p"]}, {}, sagemaker=object())[1] == {}


class _Response:
    status = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


EVENT = {
    "RequestType": "Create", "ResponseURL": "https://cloudformation-custom-resource-response.example/x",
    "StackId": "stack", "RequestId": "req", "LogicalResourceId": "Lookup", "ResourceProperties": {},
}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (cfn_response.UserFacingError("No Approved model package"), "No Approved model package"),
        (KeyError("ModelPackageGroupName"), "KeyError: 'ModelPackageGroupName'"),
    ],
)
def test_every_failure_reaches_cloudformation(monkeypatch, error, reason):
    sent = []
    monkeypatch.setattr(cfn_response.urllib.request, "urlopen", lambda request, timeout: sent.append(request) or _Response())

    def handle(*args):
        raise error

    cfn_response.run(dict(EVENT), None, handle)
    (request,) = sent
    body = json.loads(request.data)
    assert request.get_method() == "PUT" and body["Status"] == "FAILED" and body["Reason"] == reason
    assert body["PhysicalResourceId"] == "Lookup"


def test_success_reports_data_and_physical_id(monkeypatch):
    sent = []
    monkeypatch.setattr(cfn_response.urllib.request, "urlopen", lambda request, timeout: sent.append(request) or _Response())
    cfn_response.run(dict(EVENT), None, lambda t, p, o: ("pid", {"A": "1"}))
    body = json.loads(sent[0].data)
    assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", "pid", {"A": "1"})


def stub_any():
    from botocore.stub import ANY

    return ANY
