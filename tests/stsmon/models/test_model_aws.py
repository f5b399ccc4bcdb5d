"""The AWS path of `stsmon model`: the same library functions over boto3 clients, with botocore's
Stubber checking every request against the SageMaker and S3 models and answering in their shapes."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from registry_fixture import ENDPOINT, GROUP, IMAGE, evaluation

from stscontracts.config import Config
from stsmon.aws.runtime import aws_deploy_argv
from stsmon.models import release

ACCOUNT, REGION = "111122223333", "eu-west-1"
WHEN = datetime(2033, 5, 17, 12, 0, tzinfo=timezone.utc)


def arn(n: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{n}"


def package(n: int, status: str, description: str | None = None) -> dict:
    out = {"ModelPackageName": GROUP, "ModelPackageGroupName": GROUP, "ModelPackageVersion": n, "ModelPackageArn": arn(n),
           "CreationTime": WHEN, "ModelPackageStatus": "Completed",
           "ModelPackageStatusDetails": {"ValidationStatuses": []}, "ModelApprovalStatus": status,
           "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://bkt/run{n}/model.tar.gz"}],
                                      "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
           "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                            "S3Uri": f"s3://bkt/run{n}/evaluation.json"}}},
           "CustomerMetadataProperties": {"ProblemType": "BinaryClassification"}}
    if description:
        out["ApprovalDescription"] = description
    return out


def body(document: dict) -> dict:
    raw = json.dumps(document).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw))}


def expect_served(sm: Stubber, n: int) -> None:
    sm.add_response("describe_endpoint", {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/sts-endpoint",
                                          "EndpointConfigName": "cfg", "EndpointStatus": "InService",
                                          "CreationTime": WHEN, "LastModifiedTime": WHEN}, {"EndpointName": ENDPOINT})
    sm.add_response("describe_endpoint_config", {"EndpointConfigName": "cfg", "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/cfg",
                                                 "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
                                                 "CreationTime": WHEN}, {"EndpointConfigName": "cfg"})
    sm.add_response("describe_model", {"ModelName": "m", "ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m",
                                       "CreationTime": WHEN, "Containers": [{"ModelPackageName": arn(n)}]}, {"ModelName": "m"})


def expect_list(sm: Stubber, s3: Stubber, packages: list[dict], accuracy: dict[int, float]) -> None:
    sm.add_response("list_model_packages", {"ModelPackageSummaryList": [
        {k: p[k] for k in ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn", "CreationTime",
                           "ModelPackageStatus", "ModelApprovalStatus")} for p in packages]},
        {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"})
    for p in packages:
        expect_describe(sm, s3, p, accuracy[p["ModelPackageVersion"]])


def expect_describe(sm: Stubber, s3: Stubber, p: dict, accuracy: float) -> None:
    sm.add_response("describe_model_package", p, {"ModelPackageName": p["ModelPackageArn"]})
    s3.add_response("get_object", body(evaluation(accuracy)),
                    {"Bucket": "bkt", "Key": f"run{p['ModelPackageVersion']}/evaluation.json"})


@pytest.fixture
def stubbed(boto_client, aws_clients):
    sm_client, s3_client = boto_client("sagemaker", REGION), boto_client("s3", REGION)
    sm, s3 = Stubber(sm_client), Stubber(s3_client)
    clients = aws_clients({"sagemaker": sm_client, "s3": s3_client},
                          config=Config(endpoint_name=ENDPOINT, region=REGION))
    with sm, s3:
        yield clients, sm, s3
        sm.assert_no_pending_responses()
        s3.assert_no_pending_responses()


def test_approve_on_aws_sends_update_model_package_with_the_description(stubbed):
    clients, sm, s3 = stubbed
    expect_served(sm, 1)
    expect_list(sm, s3, [package(2, "PendingManualApproval"), package(1, "Approved")], {2: 0.8, 1: 0.78})
    sm.add_response("update_model_package", {"ModelPackageArn": arn(2)},
                    {"ModelPackageArn": arn(2), "ModelApprovalStatus": "Approved", "ApprovalDescription": "looks good"})
    expect_describe(sm, s3, package(2, "Approved", "looks good"), 0.8)
    before, after = release.set_status(clients, "2", "Approved", description="looks good")
    assert (before.status, after.status, after.description) == ("PendingManualApproval", "Approved", "looks good")


def test_approve_below_the_gate_on_aws_sends_no_update(stubbed):
    clients, sm, s3 = stubbed
    expect_served(sm, 1)
    expect_list(sm, s3, [package(2, "PendingManualApproval"), package(1, "Approved")], {2: 0.5, 1: 0.78})
    with pytest.raises(release.GateRefused, match="accuracy 0.5000 fails the gate"):
        release.set_status(clients, "v2", "Approved")


def test_rollback_target_on_aws_reads_what_the_endpoint_serves(stubbed):
    clients, sm, s3 = stubbed
    expect_served(sm, 3)
    expect_list(sm, s3, [package(3, "Approved"), package(2, "Rejected"), package(1, "Approved")], {3: .8, 2: .7, 1: .78})
    from stsmon.models import versions

    served, target = release.rollback_target(versions.list_versions(clients))
    assert (served.arn, target.arn) == (arn(3), arn(1))


def test_a_pinned_aws_deploy_synthesizes_with_the_pin(tmp_path):
    """On AWS the pin is in the templates (the custom resource's ModelPackageArn, from MODEL_PACKAGE_ARN): the
    deploy synthesizes the app with it into the assembly folder instead of deploying the old assembly."""
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "cdk").write_text("")
    argv = aws_deploy_argv(tmp_path, Path("cdk.out"), ("sts-serving", "sts-monitoring"), True, pinned_package=arn(1))
    assert argv[1:] == ["deploy", "--output", "cdk.out", "-c", f"MODEL_PACKAGE_ARN={arn(1)}", "--no-notices",
                        "--require-approval", "broadening", "--exclusively", "sts-serving", "sts-monitoring"]
    unpinned = aws_deploy_argv(tmp_path, Path("cdk.out"), ("sts-serving",), True, unpin=True)
    assert unpinned[1:] == ["deploy", "--output", "cdk.out", "--no-notices", "--require-approval", "broadening",
                            "--exclusively", "sts-serving"]


def test_compare_on_aws_reads_the_registering_runs_test_split_and_both_models_through_the_clients(
        boto_client, aws_clients, tmp_path):
    """compare --target aws: which versions (SageMaker, stubbed), the test split of the execution that
    registered B (its MetadataProperties.GeneratedBy -> Preprocess job -> its test output in S3) and both
    model archives are read through the clients (S3 in moto); each model scores with its own program."""
    import sys
    import tarfile

    import boto3
    from moto import mock_aws

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "endpoint"))
    from endpoint_fixtures import build_toy_model

    from stsmon.models.compare import compare

    folder = build_toy_model(tmp_path / "toy")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)))
    execution = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/stspipeline/execution/abc123"
    job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-abc123-preprocess-x1"
    rows = ['1,"the cat sat on the mat","a cat sat on the mat"', '0,"the sky is blue","bananas are yellow"',
            '1,"stocks fell sharply","shares fell sharply"', '0,"I like tea","the train was late"'] * 5
    with mock_aws():
        s3_client = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
        s3_client.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": REGION})
        for n in (1, 2):
            s3_client.put_object(Bucket="bkt", Key=f"run{n}/model.tar.gz", Body=archive.read_bytes())
        s3_client.put_object(Bucket="bkt", Key="sts/pipelines/abc123/test/test.csv", Body="\n".join(rows) + "\n")
        sm_client = boto_client("sagemaker", REGION)
        clients = aws_clients({"sagemaker": sm_client, "s3": s3_client},
                              config=Config(endpoint_name=ENDPOINT, region=REGION))
        with Stubber(sm_client) as sm:
            expect_served(sm, 1)
            v2 = {**package(2, "PendingManualApproval"), "MetadataProperties": {"GeneratedBy": execution}}
            sm.add_response("list_model_packages", {"ModelPackageSummaryList": [
                {k: p[k] for k in ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn", "CreationTime",
                                   "ModelPackageStatus", "ModelApprovalStatus")} for p in (v2, package(1, "Approved"))]},
                {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"})
            sm.add_response("describe_model_package", v2, {"ModelPackageName": arn(2)})
            sm.add_response("describe_model_package", package(1, "Approved"), {"ModelPackageName": arn(1)})
            sm.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
                {"StepName": "Preprocess", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job}}}]},
                {"PipelineExecutionArn": execution, "SortOrder": "Ascending"})
            sm.add_response("describe_processing_job", {
                "ProcessingJobName": "pipelines-abc123-preprocess-x1", "ProcessingJobArn": job,
                "ProcessingJobStatus": "Completed", "CreationTime": WHEN, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                "AppSpecification": {"ImageUri": IMAGE},
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                          "VolumeSizeInGB": 30}},
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "test", "S3Output": {
                    "S3Uri": "s3://bkt/sts/pipelines/abc123/test", "LocalPath": "/opt/ml/processing/test",
                    "S3UploadMode": "EndOfJob"}}]}}, {"ProcessingJobName": "pipelines-abc123-preprocess-x1"})
            result = compare(clients, "1", "2", windows=0, resamples=200)
            sm.assert_no_pending_responses()
    assert (result.test.pairs, result.test.agreement) == (20, 1.0)
    assert "the test split of the run that registered v2" in result.test.data
    assert result.test.row("accuracy").difference_interval == (0.0, 0.0)


def test_rollback_on_aws_deploys_serving_and_monitoring_with_the_pin_then_checks_what_serves(
        boto_client, aws_clients, tmp_path, monkeypatch):
    """rollback --target aws: the served version and the previous Approved one from SageMaker (stubbed), the
    deployed stacks from CloudFormation (stubbed), then `cdk deploy -c MODEL_PACKAGE_ARN=<v1>` of the
    serving and monitoring stacks (the CLI process is recorded, not run), then the endpoint is asked again."""
    import subprocess as sp

    import stsmon.aws.runtime as aws_runtime

    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "cdk").write_text("")
    assembly = tmp_path / "cdk.out"
    assembly.mkdir()
    (assembly / "manifest.json").write_text(json.dumps({"artifacts": {name: {
        "type": "aws:cloudformation:stack", "environment": f"aws://{ACCOUNT}/{REGION}",
        "properties": {"templateFile": f"{name}.template.json"}} for name in ("sts-serving", "sts-monitoring")}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(aws_runtime, "caller_account", lambda client: ACCOUNT)
    ran = []
    monkeypatch.setattr(aws_runtime.subprocess, "run", lambda argv, **kw: ran.append(argv) or sp.CompletedProcess(argv, 0))

    sm_client, cfn_client = boto_client("sagemaker", REGION), boto_client("cloudformation", REGION)
    clients = aws_clients({"sagemaker": sm_client, "cloudformation": cfn_client},
                          config=Config(endpoint_name=ENDPOINT, region=REGION))

    def stack(name: str, outputs: dict) -> dict:
        return {"Stacks": [{"StackName": name, "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/x",
                            "CreationTime": WHEN, "StackStatus": "UPDATE_COMPLETE",
                            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}

    with Stubber(sm_client) as sm, Stubber(cfn_client) as cfn:
        expect_served(sm, 3)
        packages = [package(3, "Approved"), package(2, "Rejected"), package(1, "Approved")]
        sm.add_response("list_model_packages", {"ModelPackageSummaryList": [
            {k: p[k] for k in ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn", "CreationTime",
                               "ModelPackageStatus", "ModelApprovalStatus")} for p in packages]},
            {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"})
        for p in packages:
            sm.add_response("describe_model_package", p, {"ModelPackageName": p["ModelPackageArn"]})
        cfn.add_response("describe_stacks", stack("sts-serving", {}), {"StackName": "sts-serving"})
        cfn.add_response("describe_stacks", stack("sts-monitoring", {}), {"StackName": "sts-monitoring"})
        expect_served(sm, 1)
        cfn.add_response("describe_stacks", stack("sts-monitoring", {"BaselineUri": "s3://bkt/run1/baseline/"}),
                         {"StackName": "sts-monitoring"})
        done = release.rollback(clients, assembly, echo=lambda line: None)
        sm.assert_no_pending_responses()
        cfn.assert_no_pending_responses()
    assert (done["from_version"], done["to_version"], done["baseline_uri"]) == (3, 1, "s3://bkt/run1/baseline/")
    assert len(ran) == 1 and ran[0][1:] == [
        "deploy", "--output", str(assembly), "-c", f"MODEL_PACKAGE_ARN={arn(1)}", "--no-notices",
        "--require-approval", "broadening", "--exclusively", "sts-serving", "sts-monitoring"]
