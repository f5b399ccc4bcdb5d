"""The serving stack's resources deployed locally: package lookup, model, config, a real endpoint."""

from __future__ import annotations

import json
import os
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from stsmon.clock import FixedClock
from stsmon.endpoint import handlers as h
from stsmon.endpoint.capture import scan_capture
from stsmon.endpoint.process import read_record
from stsmon.errors import StsmonError
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.handlers import DeployContext, DeployedResource, ServingOptions
from stsmon.resource_handlers import handler_for
from stsmon.localcloud.registry import Registry
from stsmon.state import StateDir

GROUP = "stsPackageGroup"
ENDPOINT = "sts-endpoint"
CAPTURE_URI = "s3://artifacts/sts/datacapture"
CLOCK = FixedClock(datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc))


def pack(model_dir: Path, state: StateDir, key: str) -> str:
    uri = f"s3://artifacts/{key}"
    path = state.s3_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(model_dir.rglob("*")):
            if "__pycache__" not in f.parts:
                tar.add(f, arcname=str(f.relative_to(model_dir)), recursive=False)
    return uri


def register_package(reg: Registry, state: StateDir, model_uri: str, n: int, status: str = "Approved") -> str:
    constraints = f"s3://artifacts/sts/pipelines/exec{n}/baseline/constraints.json"
    path = state.s3_path(constraints)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 0.0, "binary_classification_constraints": {
        "accuracy": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}}}))
    return reg.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": model_uri,
                            "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelApprovalStatus=status,
        DriftCheckBaselines={"ModelQuality": {"Constraints": {"ContentType": "application/json", "S3Uri": constraints}}},
    )["ModelPackageArn"]


@pytest.fixture
def world(tmp_path, toy_model_dir, server_env, monkeypatch):
    # Background servers started by the handlers inherit this environment.
    monkeypatch.setenv("PYTHONPATH", server_env["PYTHONPATH"])
    state = StateDir(tmp_path / "state")
    state.root.mkdir(parents=True)
    env = LocalEnvironment()
    reg = Registry(state.registry_db, env=env, clock=CLOCK)
    reg.create_model_package_group(ModelPackageGroupName=GROUP)
    yield state, env, reg
    for name in (ENDPOINT,):
        h.stop_endpoint_quietly(state, name)
    reg.close()


def context(state, env, **serving) -> DeployContext:
    return DeployContext(state=state, env=env, stack_name="sts-serving", clock=CLOCK,
                         serving=ServingOptions(**{"port": 0, **serving}), echo=lambda m: None)


LOOKUP_PROPS = {"ServiceToken": "arn:aws:lambda:us-east-1:000000000000:function:x", "ModelPackageGroupName": GROUP,
                "ModelPackageArn": "", "EndpointName": "", "MetricNames": ["accuracy"], "Refresh": ""}
CAPTURE = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": CAPTURE_URI,
           "KmsKeyId": "arn:aws:kms:us-east-1:000000000000:key/k",
           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}


def deploy_chain(ctx: DeployContext, previous: dict | None = None) -> dict:
    """Apply the serving stack's four resources like the deployer (create, or refresh when recorded)."""
    previous = previous or {}
    out = {}

    def apply(lid, rtype, props):
        handler = handler_for(rtype)
        old = previous.get(lid)
        if old is None:
            result = handler.create(ctx, lid, props)
        else:
            result = handler.refresh(ctx, lid, props, old) or h.HandlerResult(old.physical_id, old.attributes)
        out[lid] = DeployedResource(lid, rtype, result.physical_id, props, result.attributes)
        return result

    pkg = apply("ServedPackage", "Custom::StsApprovedModelPackage", LOOKUP_PROPS)
    model = apply("Model", "AWS::SageMaker::Model", {
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r", "EnableNetworkIsolation": True,
        "Containers": [{"ModelPackageName": pkg.attributes["ModelPackageArn"]}]})
    config = apply("Config", "AWS::SageMaker::EndpointConfig", {
        "KmsKeyId": "k", "DataCaptureConfig": CAPTURE,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model.attributes["ModelName"], "InitialInstanceCount": 1,
                                "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}]})
    apply("Endpoint", "AWS::SageMaker::Endpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": config.attributes["EndpointConfigName"]})
    return out


@pytest.mark.slow
def test_serving_stack_lifecycle(world, toy_model_dir, toy_builder, tmp_path, runtime_client):
    state, env, reg = world
    first = register_package(reg, state, pack(toy_model_dir, state, "sts/pipelines/exec1/model.tar.gz"), 1)
    deployed = deploy_chain(context(state, env))
    assert deployed["ServedPackage"].attributes["ModelPackageArn"] == first
    assert deployed["ServedPackage"].attributes["accuracyThreshold"] == "0.7"
    record = read_record(state, ENDPOINT)
    assert record["running"] and record["info"]["ModelPackageArn"] == first
    client = runtime_client(record["url"])
    reply = client.invoke_endpoint(EndpointName=ENDPOINT, Body=b"a b,a c\n", ContentType="text/csv",
                                   Accept="text/csv", InferenceId="handler_1")
    assert reply["Body"].read().count(b",") == 1

    # A newer approved package: the next deploy resolves it and swaps the model in place.
    model_b = toy_builder(tmp_path / "model_b", work=10)
    second = register_package(reg, state, pack(model_b, state, "sts/pipelines/exec2/model.tar.gz"), 2)
    again = deploy_chain(context(state, env), deployed)
    assert again["ServedPackage"].attributes["ModelPackageArn"] == second
    assert again["Model"].physical_id != deployed["Model"].physical_id  # a new model, like SageMaker
    assert not (state.endpoints / "_models" / f"{deployed['Model'].attributes['ModelName']}.json").exists()
    # Ref is the ARN, as CloudFormation's schema says (the stack reads names with GetAtt)
    assert deployed["Model"].physical_id == deployed["Model"].attributes["ModelArn"]
    assert deployed["Model"].physical_id.startswith("arn:aws:sagemaker:us-east-1:000000000000:model/")
    swapped = read_record(state, ENDPOINT)
    assert swapped["pid"] == record["pid"] and swapped["generation"] == 2
    assert swapped["info"]["ModelPackageArn"] == second and swapped["port"] == record["port"]

    # --package-arn pins the first package again (stsmon model rollback does this) ...
    pinned = deploy_chain(context(state, env, package_arn=first), again)
    assert read_record(state, ENDPOINT)["info"]["ModelPackageArn"] == first

    # --stop stops the server, a plain deploy starts it again, delete removes it.
    deploy_chain(context(state, env, stop=True), pinned)
    assert not read_record(state, ENDPOINT)["running"]
    kept = deploy_chain(context(state, env), pinned)
    assert read_record(state, ENDPOINT)["running"]
    # ... and the pin holds for a plain deploy (as a pinned assembly does on AWS) until --unpin.
    assert kept["ServedPackage"].attributes["ModelPackageArn"] == first
    assert read_record(state, ENDPOINT)["info"]["ModelPackageArn"] == first
    pinned = deploy_chain(context(state, env, unpin=True), kept)
    assert pinned["ServedPackage"].attributes["ModelPackageArn"] == second
    assert deploy_chain(context(state, env), pinned)["ServedPackage"].attributes["ModelPackageArn"] == second
    # Capture went to the config's destination, with the inference id.
    records = scan_capture(state.s3_path(CAPTURE_URI)).records
    assert [r["eventMetadata"]["inferenceId"] for r in records] == ["handler_1"]
    ep = handler_for("AWS::SageMaker::Endpoint")
    ep.delete(context(state, env), "Endpoint", pinned["Endpoint"])
    assert read_record(state, ENDPOINT) is None


@pytest.mark.slow
def test_no_capture_option_serves_without_capture(world, toy_model_dir):
    state, env, reg = world
    register_package(reg, state, pack(toy_model_dir, state, "sts/m.tar.gz"), 1)
    deploy_chain(context(state, env, capture=False))
    assert read_record(state, ENDPOINT)["capture"] is None


def test_without_an_approved_package_the_deploy_says_what_to_do(world, toy_model_dir):
    state, env, reg = world
    register_package(reg, state, pack(toy_model_dir, state, "sts/m.tar.gz"), 1, status="PendingManualApproval")
    with pytest.raises(StsmonError, match=r"No Approved model package in group stsPackageGroup.*stsmon train"):
        handler_for("Custom::StsApprovedModelPackage").create(context(state, env), "ServedPackage", LOOKUP_PROPS)


def test_missing_model_data_and_bad_configs_are_refused(world):
    state, env, reg = world
    arn = register_package(reg, state, "s3://artifacts/sts/missing.tar.gz", 1)
    ctx = context(state, env)
    with pytest.raises(StsmonError, match="does not exist locally"):
        handler_for("AWS::SageMaker::Model").create(ctx, "Model", {"Containers": [{"ModelPackageName": arn}]})
    cfg = handler_for("AWS::SageMaker::EndpointConfig")
    variant = {"VariantName": "AllTraffic", "ModelName": "m"}
    with pytest.raises(StsmonError, match="exactly one production variant"):
        cfg.check(ctx, "Config", {"ProductionVariants": [variant, {**variant, "VariantName": "B"}]})
    with pytest.raises(StsmonError, match="DataCaptureConfig of Config"):
        cfg.check(ctx, "Config", {"ProductionVariants": [variant],
                                  "DataCaptureConfig": {**CAPTURE, "InitialSamplingPercentage": 150}})
    assert os.path.exists(state.registry_db)
