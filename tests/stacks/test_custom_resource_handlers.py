"""The custom-resource Lambdas (stacks/lambdas) through CloudFormation's lifecycle.

The requests are the ones CloudFormation sends, as documented (AWS
CloudFormation User Guide, "Custom resource request types" and "Custom
resource response objects"; the lifecycle notes in the aws-cdk-lib
``custom_resources`` README, v2.275.0):

- Create; if it answers FAILED, a Delete with the id of that answer;
- Update with the current id, new ``ResourceProperties`` and
  ``OldResourceProperties``; a different id in the answer is a replacement,
  followed (once the update succeeded) by a Delete of the old id with the old
  properties;
- when the stack update fails afterwards, a rollback Update to the id the
  update answered, with the two property sets swapped;
- Delete, possibly repeated (``DELETE_FAILED`` and delete again).

Each request goes through ``cfn_response.run`` (the code the Lambda runs) and
the test checks the one answer: status, PhysicalResourceId and Data. AWS is
moto (the model registry and S3) or botocore's Stubber (CloudFormation's stack
status, which moto cannot put in DELETE_IN_PROGRESS; SageMaker's
DeleteModelPackage, which moto does not implement).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

LAMBDAS = Path(__file__).resolve().parents[2] / "stacks" / "lambdas"
sys.path.insert(0, str(LAMBDAS))

import approved_package  # noqa: E402
import cfn_response  # noqa: E402
import cleanup  # noqa: E402
from stscontracts.served_package import ServedPackageError  # noqa: E402

GROUP = "stsPackageGroup"
REGION = "us-east-1"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/sts-serving/5b918d10-cd98-11ea-90d5-0a9cd3354c10"
ARN = "arn:aws:sagemaker:us-east-1:000000000000:model-package/stspackagegroup/7"
CONSTRAINTS = "s3://sts-artifacts-000000000000-us-east-1/sts/pipelines/exec1/Baseline/baseline/constraints.json"
WHEN = "2033-03-01T00:00:00Z"


def client(service):
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


# -- sending requests the way CloudFormation does --------------------------------


class Context:
    """The slice of the Lambda context cfn_response reads."""

    log_stream_name = "2033/03/01/[$LATEST]abc"

    def __init__(self, remaining_ms: float = 600_000.0) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> float:
        return self.remaining_ms


class NoTimer:
    def __init__(self, seconds, callback):
        self.seconds, self.callback = seconds, callback

    def start(self):
        pass

    def cancel(self):
        pass


_request_ids = iter(range(1, 10_000))


def event(request_type, props, *, physical_id=None, old_props=None, logical_id="ServedPackage"):
    body = {
        "RequestType": request_type,
        "RequestId": f"req-{next(_request_ids)}",
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?sig",
        "ResourceType": "Custom::Test",
        "LogicalResourceId": logical_id,
        "StackId": STACK_ID,
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", "ServiceTimeout": "180", **props},
    }
    if physical_id is not None:
        body["PhysicalResourceId"] = physical_id
    if old_props is not None:
        body["OldResourceProperties"] = {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", **old_props}
    return body


def send(evt, handle, *, context=None, timer=NoTimer):
    """Run one request through cfn_response.run; returns the one answer PUT to CloudFormation."""
    answers = []

    def put(url, body):
        assert url == evt["ResponseURL"]
        answers.append(json.loads(body))
        return 200

    returned = cfn_response.run(evt, context or Context(), handle, put=put, timer=timer)
    assert len(answers) == 1, answers  # exactly one answer per request
    assert returned == answers[0]
    answer = answers[0]
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == (evt["StackId"], evt["RequestId"], evt["LogicalResourceId"])
    assert len(json.dumps(answer).encode()) <= cfn_response.MAX_BODY_BYTES
    return answer


# -- Custom::StsApprovedModelPackage in moto -----------------------------------------


BUCKET = "sts-artifacts-123456789012-us-east-1"


@pytest.fixture
def registry(monkeypatch):
    """An empty model package group and bucket in moto; ``register(accuracy)`` adds an Approved package."""
    from moto import mock_aws

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sm, s3 = boto3.client("sagemaker", region_name=REGION), boto3.client("s3", region_name=REGION)
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        s3.create_bucket(Bucket=BUCKET)

        def register(accuracy: float, status: str = "Approved") -> str:
            time.sleep(0.005)  # moto's CreationTime has millisecond resolution; "latest" must be unambiguous
            n = len(sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) + 1
            key = f"sts/pipelines/exec{n}/Baseline/baseline/constraints.json"
            s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"binary_classification_constraints": {
                "accuracy": {"threshold": accuracy, "comparison_operator": "LessThanThreshold"}}}).encode())
            return sm.create_model_package(
                ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
                InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/sts/m{n}.tar.gz"}],
                                        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
                DriftCheckBaselines={"ModelQuality": {
                    "Constraints": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key}"},
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key.replace('constraints', 'statistics')}"}}},
            )["ModelPackageArn"]

        register.sagemaker, register.s3 = sm, s3
        yield register


def served(answer):
    return answer["Data"]["ModelPackageArn"], answer["Data"].get("accuracyThreshold")


def test_approved_package_lifecycle_create_update_failed_update_rollback_delete(registry):
    sm, s3 = registry.sagemaker, registry.s3

    def handle(request):
        return approved_package.handle_request(request, sagemaker=sm, s3=s3)

    p1 = registry(0.71)
    a = {"ModelPackageGroupName": GROUP, "ModelPackageArn": "", "EndpointName": "", "MetricNames": ["accuracy"], "Refresh": ""}

    # Create: the latest Approved package.
    created = send(event("Create", a), handle)
    assert created["Status"] == "SUCCESS" and served(created) == (p1, "0.71")
    id1 = created["PhysicalResourceId"]
    assert p1 in id1

    # A newer package is approved; an update that changes only the metrics keeps the
    # served package and the id (no lookup, no replacement).
    p2 = registry(0.82)
    a_f1 = {**a, "MetricNames": ["accuracy", "f1"]}
    kept = send(event("Update", a_f1, physical_id=id1, old_props=a), handle)
    assert kept["Status"] == "SUCCESS" and kept["PhysicalResourceId"] == id1
    assert served(kept) == (p1, "0.71") and float(kept["Data"]["f1Threshold"]) < -1e29

    # A new Refresh value looks the package up again: a new id (replacement).
    b = {**a_f1, "Refresh": "v2"}
    moved = send(event("Update", b, physical_id=id1, old_props=a_f1), handle)
    assert moved["Status"] == "SUCCESS" and served(moved) == (p2, "0.82")
    id2 = moved["PhysicalResourceId"]
    assert id2 != id1 and p2 in id2

    # Another resource fails, the stack rolls back: an Update to id2 with the previous
    # properties. It must serve p1 again, not look up "latest" (p2, the failed one).
    rolled = send(event("Update", a_f1, physical_id=id2, old_props=b), handle)
    assert rolled["Status"] == "SUCCESS" and served(rolled) == (p1, "0.71")
    id3 = rolled["PhysicalResourceId"]
    assert p1 in id3 and p2 not in id3

    # The rollback answered another id: CloudFormation deletes id2 in its clean-up phase.
    cleaned = send(event("Delete", b, physical_id=id2), handle)
    assert (cleaned["Status"], cleaned["PhysicalResourceId"], cleaned["Data"]) == ("SUCCESS", id2, {})

    # Deploying v2 again (after fixing what failed) looks up again.
    again = send(event("Update", b, physical_id=id3, old_props=a_f1), handle)
    assert served(again) == (p2, "0.82")
    id4 = again["PhysicalResourceId"]

    # An update that fails on this resource itself (a pinned package that does not
    # exist) keeps the id; its rollback serves what it served.
    pinned = {**b, "ModelPackageArn": p2.replace("/2", "/99")}
    failed = send(event("Update", pinned, physical_id=id4, old_props=b), handle)
    assert failed["Status"] == "FAILED" and failed["PhysicalResourceId"] == id4 and "/99" in failed["Reason"]
    back = send(event("Update", b, physical_id=id4, old_props=pinned), handle)
    assert (back["Status"], back["PhysicalResourceId"]) == ("SUCCESS", id4) and served(back) == (p2, "0.82")

    # Delete, and the same Delete again: both answer the id they were sent.
    for _ in range(2):
        gone = send(event("Delete", b, physical_id=id4), handle)
        assert (gone["Status"], gone["PhysicalResourceId"]) == ("SUCCESS", id4)


def test_approved_package_pin_and_rollback_of_the_pin(registry):
    sm, s3 = registry.sagemaker, registry.s3

    def handle(request):
        return approved_package.handle_request(request, sagemaker=sm, s3=s3)

    p1, p2 = registry(0.71), registry(0.82)
    a = {"ModelPackageGroupName": GROUP, "MetricNames": ["accuracy"], "Refresh": ""}
    created = send(event("Create", a), handle)
    assert served(created) == (p2, "0.82")
    pin = {**a, "ModelPackageArn": p1}
    pinned = send(event("Update", pin, physical_id=created["PhysicalResourceId"], old_props=a), handle)
    assert served(pinned) == (p1, "0.71")
    p3 = registry(0.93)  # approved meanwhile: the rollback must not pick it up
    rolled = send(event("Update", a, physical_id=pinned["PhysicalResourceId"], old_props=pin), handle)
    assert served(rolled) == (p2, "0.82") and p3 not in rolled["PhysicalResourceId"]


def test_delete_after_a_failed_create_answers_the_id_of_the_failed_create(registry):
    sm, s3 = registry.sagemaker, registry.s3

    def handle(request):
        return approved_package.handle_request(request, sagemaker=sm, s3=s3)

    registry(0.71, status="PendingManualApproval")  # nothing Approved yet
    a = {"ModelPackageGroupName": GROUP, "MetricNames": ["accuracy"], "Refresh": ""}
    create = event("Create", a)
    failed = send(create, handle)
    assert failed["Status"] == "FAILED" and "No Approved model package in group stsPackageGroup" in failed["Reason"]
    assert failed["PhysicalResourceId"] == f"create-failed-{create['RequestId']}"
    for _ in range(2):  # the rollback's Delete, and a repeat of it
        deleted = send(event("Delete", a, physical_id=failed["PhysicalResourceId"]), handle)
        assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", failed["PhysicalResourceId"])
    # An id CloudFormation invents when a Create never answered, and the id format
    # of an earlier version: Delete answers them as sent.
    for odd in ("sts-serving-ServedPackage-1AB2C3D4E5F6", f"{GROUP}-served-package"):
        assert send(event("Delete", a, physical_id=odd), handle)["PhysicalResourceId"] == odd


def test_an_update_from_an_id_of_an_earlier_version_looks_the_package_up(registry):
    sm, s3 = registry.sagemaker, registry.s3
    p1 = registry(0.71)
    a = {"ModelPackageGroupName": GROUP, "MetricNames": ["accuracy"], "Refresh": "x"}
    answer = send(event("Update", a, physical_id=f"{GROUP}-served-package", old_props={**a, "Refresh": ""}),
                  lambda r: approved_package.handle_request(r, sagemaker=sm, s3=s3))
    assert answer["Status"] == "SUCCESS" and served(answer) == (p1, "0.71")


# -- Custom::StsApprovedModelPackage: the lookups, against Stubber ----------------------


def package_description(arn=ARN):
    return {
        "ModelPackageArn": arn,
        "ModelPackageName": GROUP,
        "ModelPackageVersion": 7,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CreationTime": WHEN,
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


def test_the_data_quality_baseline_is_the_folder_of_its_constraints():
    package = package_description()
    folder = "s3://b/sts/pipelines/e1/BaselineDataQuality/data-quality-baseline"
    package["DriftCheckBaselines"]["ModelDataQuality"] = {
        "Statistics": {"ContentType": "application/json", "S3Uri": f"{folder}/statistics.json"},
        "Constraints": {"ContentType": "application/json", "S3Uri": f"{folder}/constraints.json"},
    }
    data = approved_package.package_attributes(package)
    assert data["DataQualityBaselineUri"] == f"{folder}/"
    assert data["BaselineUri"] == CONSTRAINTS.rsplit("/", 1)[0] + "/"


def stub_constraints(s3_stub, document):
    body = json.dumps(document).encode()
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
    props = {"ModelPackageGroupName": GROUP, "MetricNames": ["accuracy", "f1", "auc"], "Refresh": ""}
    with Stubber(sm) as sm_stub, Stubber(s3) as s3_stub:
        sm_stub.add_response(
            "list_model_packages",
            {"ModelPackageSummaryList": [{"ModelPackageArn": ARN, "ModelPackageStatus": "Completed", "CreationTime": WHEN}]},
            {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1},
        )
        sm_stub.add_response("describe_model_package", package_description(), {"ModelPackageName": ARN})
        stub_constraints(s3_stub, CONSTRAINTS_DOC)
        physical_id, data = approved_package.handle("Create", props, {}, sagemaker=sm, s3=s3)
    assert physical_id == f"served={ARN};selection={approved_package.selection_digest(props)}"
    assert data["ModelPackageArn"] == ARN and data["ModelPackageVersion"] == "7"
    assert data["BaselineConstraintsUri"] == CONSTRAINTS
    assert data["BaselineUri"] == CONSTRAINTS.rsplit("/", 1)[0] + "/"
    # No DriftCheckBaselines.ModelDataQuality (a package older than it): the model-quality folder, where
    # the monitor finds no data-quality baseline and reports the check NotEvaluated.
    assert data["DataQualityBaselineUri"] == data["BaselineUri"]
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
            "EndpointConfigName": "cfg-1", "EndpointStatus": "InService", "CreationTime": WHEN,
            "LastModifiedTime": WHEN}, {"EndpointName": "sts-endpoint"})
        sm_stub.add_response("describe_endpoint_config", {
            "EndpointConfigName": "cfg-1", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg-1",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "model-1"}],
            "CreationTime": WHEN}, {"EndpointConfigName": "cfg-1"})
        sm_stub.add_response("describe_model", {
            "ModelName": "model-1", "ModelArn": "arn:aws:sagemaker:us-east-1:000000000000:model/model-1",
            "Containers": [{"ModelPackageName": ARN}], "CreationTime": WHEN}, {"ModelName": "model-1"})
        sm_stub.add_response("describe_model_package", package_description(), {"ModelPackageName": ARN})
        stub_constraints(s3_stub, CONSTRAINTS_DOC)
        _, data = approved_package.handle("Create", {"ModelPackageGroupName": GROUP, "EndpointName": "sts-endpoint", "MetricNames": ["accuracy"]}, {}, sagemaker=sm, s3=s3)
    assert data["ModelPackageArn"] == ARN and data["accuracyThreshold"] == "0.71"


def test_no_approved_package_is_a_clear_failure():
    """The shared logic (stscontracts.served_package) refuses; the Lambda answers FAILED with its message."""
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
        with pytest.raises(ServedPackageError, match="No Approved model package in group stsPackageGroup.*MODEL_PACKAGE_ARN"):
            approved_package.handle("Create", {"ModelPackageGroupName": GROUP}, {}, sagemaker=sm, s3=client("s3"))
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
        answer = send(event("Create", {"ModelPackageGroupName": GROUP}),
                      lambda request: approved_package.handle_request(request, sagemaker=sm, s3=client("s3")))
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("No Approved model package in group stsPackageGroup. Run the training pipeline")


def test_physical_id_round_trips_and_ignores_ids_it_did_not_write():
    full = approved_package.Served(ARN, "a" * 16, ARN.replace("/7", "/6"), "b" * 16)
    assert approved_package.Served.parse(full.physical_id()) == full
    assert approved_package.Served.parse(approved_package.Served(ARN, "c" * 16).physical_id()) == approved_package.Served(ARN, "c" * 16)
    for other in (None, "", "create-failed-req-1", f"{GROUP}-served-package", "sts-serving-Lookup-1AB2"):
        assert approved_package.Served.parse(other) is None
    # What chooses the package is in the digest; MetricNames and the service properties are not.
    base = {"ModelPackageGroupName": GROUP, "Refresh": "v1", "MetricNames": ["accuracy"]}
    assert approved_package.selection_digest(base) == approved_package.selection_digest({**base, "MetricNames": ["f1"], "ServiceToken": "x"})
    assert approved_package.selection_digest(base) != approved_package.selection_digest({**base, "Refresh": "v2"})


# -- Custom::StsPipelineCleanup: stack status in Stubber --------------------------------


def stack_status(cfn_stub, status):
    cfn_stub.add_response(
        "describe_stacks",
        {"Stacks": [{"StackId": STACK_ID, "StackName": "sts-training", "CreationTime": WHEN, "StackStatus": status}]},
        {"StackName": STACK_ID},
    )


def summaries(arns):
    return [{"ModelPackageArn": arn, "ModelPackageStatus": "Completed", "CreationTime": WHEN} for arn in arns]


def pkg(n: int) -> str:
    return f"arn:aws:sagemaker:us-east-1:123456789012:model-package/stspackagegroup/{n}"


def test_cleanup_lifecycle_rename_then_removal_then_stack_deletion():
    """Renaming PIPELINE_NAME used to answer a new id, so CloudFormation deleted the old
    one — and that Delete wiped the registry the serving stack still used."""
    sm, cfn = client("sagemaker"), client("cloudformation")
    calls = []

    def handle(request):
        calls.append(request.request_type)
        return cleanup.handle_request(request, sagemaker=sm, cloudformation=cfn, sleep=lambda s: None)

    v1 = {"PipelineNames": ["stsPipeline"], "ModelPackageGroupName": GROUP}
    v2 = {"PipelineNames": ["stsPipeline2"], "ModelPackageGroupName": GROUP}
    with Stubber(sm) as sm_stub, Stubber(cfn) as cfn_stub:
        created = send(event("Create", v1, logical_id="Cleanup"), handle)
        assert (created["Status"], created["PhysicalResourceId"]) == ("SUCCESS", "cleanup-stsPipeline")
        pid = created["PhysicalResourceId"]

        # The rename is an Update that keeps the id: no replacement, so no Delete follows.
        renamed = send(event("Update", v2, physical_id=pid, old_props=v1, logical_id="Cleanup"), handle)
        assert (renamed["Status"], renamed["PhysicalResourceId"]) == ("SUCCESS", pid)

        # Its rollback, the same way.
        back = send(event("Update", v1, physical_id=pid, old_props=v2, logical_id="Cleanup"), handle)
        assert (back["Status"], back["PhysicalResourceId"]) == ("SUCCESS", pid)

        # A Delete while the stack is updating (the resource removed from the template, e.g.
        # the switch to prod, or an old id after a replacement) wipes nothing: the
        # SageMaker stub has no responses, so any call would fail the request.
        for status in ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"):
            stack_status(cfn_stub, status)
            kept = send(event("Delete", v1, physical_id=pid, logical_id="Cleanup"), handle)
            assert (kept["Status"], kept["PhysicalResourceId"]) == ("SUCCESS", pid)
        sm_stub.assert_no_pending_responses()

        # The stack itself is deleted: the resource's own properties say what to clean.
        stack_status(cfn_stub, "DELETE_IN_PROGRESS")
        running = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipeline2/execution/abc"
        sm_stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
            {"PipelineExecutionArn": running, "PipelineExecutionStatus": "Executing"},
            {"PipelineExecutionArn": running.replace("abc", "old"), "PipelineExecutionStatus": "Succeeded"},
        ]}, {"PipelineName": "stsPipeline2", "MaxResults": 100})
        sm_stub.add_response("stop_pipeline_execution", {"PipelineExecutionArn": running}, {"PipelineExecutionArn": running})
        sm_stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Stopping"}, {"PipelineExecutionArn": running})
        sm_stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Stopped"}, {"PipelineExecutionArn": running})
        sm_stub.add_response("list_model_packages", {"ModelPackageSummaryList": summaries([pkg(1), pkg(2)])},
                             {"ModelPackageGroupName": GROUP, "MaxResults": 100})
        sm_stub.add_response("delete_model_package", {}, {"ModelPackageName": pkg(1)})
        sm_stub.add_client_error("delete_model_package", "ValidationException", f"Model Package {pkg(2)} does not exist.",
                                 expected_params={"ModelPackageName": pkg(2)})  # deleted meanwhile: fine
        deleted = send(event("Delete", v2, physical_id=pid, logical_id="Cleanup"), handle)
        assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", pid)

        # Deleting again (a retried DELETE_FAILED stack): the pipeline and packages are gone.
        stack_status(cfn_stub, "DELETE_IN_PROGRESS")
        sm_stub.add_client_error("list_pipeline_executions", "ResourceNotFound", "Pipeline stsPipeline2 does not exist")
        sm_stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
        again = send(event("Delete", v2, physical_id=pid, logical_id="Cleanup"), handle)
        assert (again["Status"], again["PhysicalResourceId"]) == ("SUCCESS", pid)
        sm_stub.assert_no_pending_responses()
        cfn_stub.assert_no_pending_responses()


def test_cleanup_delete_after_a_failed_create_wipes_nothing():
    sm, cfn = client("sagemaker"), client("cloudformation")
    props = {"PipelineNames": ["stsPipeline"], "ModelPackageGroupName": GROUP}
    with Stubber(sm), Stubber(cfn) as cfn_stub:
        stack_status(cfn_stub, "ROLLBACK_IN_PROGRESS")
        answer = send(event("Delete", props, physical_id="create-failed-req-9", logical_id="Cleanup"),
                      lambda r: cleanup.handle_request(r, sagemaker=sm, cloudformation=cfn))
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "create-failed-req-9")


def test_cleanup_never_wipes_when_the_stack_status_is_unknown():
    sm, cfn = client("sagemaker"), client("cloudformation")
    props = {"PipelineNames": ["stsPipeline"], "ModelPackageGroupName": GROUP}
    with Stubber(sm), Stubber(cfn) as cfn_stub:
        cfn_stub.add_client_error("describe_stacks", "AccessDenied", "not authorized to perform cloudformation:DescribeStacks")
        answer = send(event("Delete", props, physical_id="cleanup-stsPipeline", logical_id="Cleanup"),
                      lambda r: cleanup.handle_request(r, sagemaker=sm, cloudformation=cfn))
    assert answer["Status"] == "FAILED" and answer["PhysicalResourceId"] == "cleanup-stsPipeline"
    assert "cannot tell whether stack" in answer["Reason"] and "nothing was deleted" in answer["Reason"]


def test_cleanup_lists_every_page_before_deleting_and_resumes_when_time_runs_out():
    """250 packages in three pages. Listing and deleting are never interleaved (a
    deletion shifts the pages); with too little time it stops, says what is left,
    and the next Delete finishes the job."""
    sm, cfn = client("sagemaker"), client("cloudformation")
    props = {"PipelineNames": ["stsPipeline"], "ModelPackageGroupName": GROUP}
    arns = [pkg(n) for n in range(1, 251)]
    context = Context(remaining_ms=600_000)
    deletes = []

    def handle(request):
        return cleanup.handle_request(request, sagemaker=sm, cloudformation=cfn, sleep=lambda s: None)

    def on_delete(params, **kwargs):
        deletes.append(params["ModelPackageName"])
        if len(deletes) == 100:  # the Lambda's clock runs down while it deletes
            context.remaining_ms = cfn_response.MARGIN_S * 1000 + cleanup.RESERVE_MS - 1

    sm.meta.events.register("before-parameter-build.sagemaker.DeleteModelPackage", on_delete)

    def stub_listing(stub, remaining):
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": []}, {"PipelineName": "stsPipeline", "MaxResults": 100})
        pages = [remaining[i:i + 100] for i in range(0, len(remaining), 100)]
        for i, page in enumerate(pages):
            params = {"ModelPackageGroupName": GROUP, "MaxResults": 100, **({"NextToken": f"t{i}"} if i else {})}
            response = {"ModelPackageSummaryList": summaries(page), **({"NextToken": f"t{i + 1}"} if i + 1 < len(pages) else {})}
            stub.add_response("list_model_packages", response, params)

    with Stubber(sm) as sm_stub, Stubber(cfn) as cfn_stub:
        stack_status(cfn_stub, "DELETE_IN_PROGRESS")
        stub_listing(sm_stub, arns)
        for arn in arns[:100]:
            sm_stub.add_response("delete_model_package", {}, {"ModelPackageName": arn})
        first = send(event("Delete", props, physical_id="cleanup-stsPipeline", logical_id="Cleanup"), handle, context=context)
        sm_stub.assert_no_pending_responses()
        assert first["Status"] == "FAILED" and first["PhysicalResourceId"] == "cleanup-stsPipeline"
        assert "deleted 100 of 250 model package(s) of group stsPackageGroup" in first["Reason"]
        assert "150 remain" in first["Reason"] and "Delete the stack again" in first["Reason"]

        context.remaining_ms = 600_000
        stack_status(cfn_stub, "DELETE_IN_PROGRESS")
        stub_listing(sm_stub, arns[100:])
        for arn in arns[100:]:
            sm_stub.add_response("delete_model_package", {}, {"ModelPackageName": arn})
        second = send(event("Delete", props, physical_id="cleanup-stsPipeline", logical_id="Cleanup"), handle, context=context)
        sm_stub.assert_no_pending_responses()
    assert second["Status"] == "SUCCESS"
    assert deletes == arns  # each exactly once, across the two Deletes


def test_cleanup_says_which_executions_are_still_stopping_and_deletes_nothing_yet():
    sm, cfn = client("sagemaker"), client("cloudformation")
    props = {"PipelineNames": ["stsPipeline"], "ModelPackageGroupName": GROUP}
    slow = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipeline/execution/slow"
    context = Context(remaining_ms=cfn_response.MARGIN_S * 1000 + cleanup.RESERVE_MS + 1000)
    with Stubber(sm) as sm_stub, Stubber(cfn) as cfn_stub:
        stack_status(cfn_stub, "DELETE_IN_PROGRESS")
        sm_stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
            {"PipelineExecutionArn": slow, "PipelineExecutionStatus": "Stopping"}]})
        sm_stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Stopping"}, {"PipelineExecutionArn": slow})
        answer = send(event("Delete", props, physical_id="cleanup-stsPipeline", logical_id="Cleanup"),
                      lambda r: cleanup.handle_request(r, sagemaker=sm, cloudformation=cfn, sleep=lambda s: None), context=context)
        sm_stub.assert_no_pending_responses()
    assert answer["Status"] == "FAILED" and slow in answer["Reason"] and "no model package deleted yet" in answer["Reason"]


# -- cfn_response: one answer, in time, within the limits --------------------------------


def test_every_failure_reaches_cloudformation_with_the_id_the_protocol_wants():
    def boom(message):
        def handle(request):
            raise message
        return handle

    create = event("Create", {})
    answer = send(create, boom(cfn_response.UserFacingError("No Approved model package")))
    assert (answer["Status"], answer["Reason"]) == ("FAILED", "No Approved model package")
    assert answer["PhysicalResourceId"] == f"create-failed-{create['RequestId']}"
    answer = send(event("Update", {}, physical_id="current-id", old_props={}), boom(KeyError("ModelPackageGroupName")))
    assert (answer["Status"], answer["Reason"], answer["PhysicalResourceId"]) == ("FAILED", "KeyError: 'ModelPackageGroupName'", "current-id")
    answer = send(dict(event("Delete", {}, physical_id="x"), RequestType="Frobnicate"), lambda r: ("y", {}))
    assert answer["Status"] == "FAILED" and "unknown RequestType 'Frobnicate'" in answer["Reason"]


def test_success_answers_data_and_id_and_the_handler_sees_only_our_properties():
    seen = []

    def handle(request):
        seen.append((request.request_type, request.properties, request.old_properties, request.physical_id, request.stack_id))
        return "pid", {"A": "1"}

    answer = send(event("Update", {"P": "2"}, physical_id="old", old_props={"P": "1"}), handle)
    assert (answer["Status"], answer["PhysicalResourceId"], answer["Data"]) == ("SUCCESS", "pid", {"A": "1"})
    assert seen == [("Update", {"P": "2"}, {"P": "1"}, "old", STACK_ID)]


def test_delete_always_answers_the_id_it_was_sent():
    answer = send(event("Delete", {}, physical_id="the-id"), lambda r: ("another-id", {}))
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "the-id")


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (("", {}), "returned no PhysicalResourceId"),
        (("x" * 1025, {}), "over CloudFormation's 1 KB"),
        (("pid", {f"Attribute{i}": "v" * 100 for i in range(40)}), "over CloudFormation's 4096-byte limit"),
        (("pid", ["not", "an", "object"]), "Data that is not an object"),
    ],
)
def test_an_answer_cloudformation_would_reject_becomes_a_clear_failure(result, reason):
    answer = send(event("Update", {}, physical_id="current-id", old_props={}), lambda r: result)
    assert answer["Status"] == "FAILED" and reason in answer["Reason"] and answer["PhysicalResourceId"] == "current-id"


def test_the_timer_answers_before_the_lambda_times_out_and_only_once():
    """A real timer: 0.2 s of Lambda time left after the margin, a handler that takes
    longer. CloudFormation gets one FAILED answer naming the progress; the handler's
    late success is not sent."""
    release = threading.Event()

    def slow(request):
        request.progress("deleted 3 of 9 model package(s)")
        release.wait(5)
        return "pid", {}

    answers = []
    context = Context(remaining_ms=cfn_response.MARGIN_S * 1000 + 200)
    evt = event("Delete", {}, physical_id="the-id")

    def put(url, body):
        answers.append(json.loads(body))
        release.set()
        return 200

    started = time.monotonic()
    cfn_response.run(evt, context, slow, put=put)
    assert time.monotonic() - started < 4
    assert len(answers) == 1
    (answer,) = answers
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("FAILED", "the-id")
    assert "Delete ran out of time" in answer["Reason"] and "deleted 3 of 9 model package(s)" in answer["Reason"]
    assert "Deleting again resumes" in answer["Reason"]


def test_a_failing_put_is_retried_and_nothing_is_raised():
    attempts = []

    def flaky(url, body):
        attempts.append(json.loads(body)["Status"])
        if len(attempts) < 2:
            raise OSError("connection reset")
        return 200

    pauses = []
    sent = cfn_response.run(event("Create", {}), Context(), lambda r: ("pid", {}), put=flaky, timer=NoTimer, sleep=pauses.append)
    assert attempts == ["SUCCESS", "SUCCESS"] and sent["Status"] == "SUCCESS" and pauses == [1]

    def down(url, body):
        raise OSError("unreachable")

    # Never an exception out of the Lambda (Lambda would retry and answer again).
    sent = cfn_response.run(event("Create", {}), Context(), lambda r: ("pid", {}), put=down, timer=NoTimer, sleep=pauses.append)
    assert sent["Status"] == "SUCCESS" and pauses == [1, 1, 2]
