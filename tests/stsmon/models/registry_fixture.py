"""A local state folder with a model package group of registered versions, as the training pipeline
registers them (evaluation.json behind ModelMetrics.ModelQuality.Statistics, the baseline's
constraints behind DriftCheckBaselines), and optionally an endpoint serving one of them, recorded as
``stsmon deploy`` records it (endpoint -> endpoint config -> model -> ModelPackageName)."""

from __future__ import annotations

import json

from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.registry import Registry
from stsmon.state import StateDir

GROUP = "stsPackageGroup"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
ENDPOINT = "sts-endpoint"


def evaluation(accuracy: float) -> dict:
    return {"binary_classification_metrics": {
        "accuracy": {"value": accuracy, "standard_deviation": 0.01},
        "precision": {"value": 0.8, "standard_deviation": 0.01},
        "recall": {"value": 0.9, "standard_deviation": 0.01},
        "f1": {"value": 0.85, "standard_deviation": 0.01},
        "auc": {"value": 0.86, "standard_deviation": 0.01}}}


def register(state: StateDir, clock, versions: list[tuple[str, float]]) -> list[str]:
    """One package per ``(approval status, accuracy)``, in order (v1, v2, ...); their ARNs."""
    registry = Registry(state.registry_db, env=LocalEnvironment(), clock=clock)
    try:
        registry.describe_model_package_group(ModelPackageGroupName=GROUP)
    except Exception:
        registry.create_model_package_group(ModelPackageGroupName=GROUP)
    arns = []
    for status, accuracy in versions:
        n = len(registry.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) + 1
        folder = f"s3://bkt/sts/run{n}"
        state.s3_path(f"{folder}/evaluation/evaluation.json").parent.mkdir(parents=True, exist_ok=True)
        state.s3_path(f"{folder}/evaluation/evaluation.json").write_text(json.dumps(evaluation(accuracy)))
        arns.append(registry.create_model_package(
            ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
            InferenceSpecification={"Containers": [{"Image": IMAGE, "ModelDataUrl": f"{folder}/model.tar.gz"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            ModelMetrics={"ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{folder}/evaluation/evaluation.json"},
                "Constraints": {"ContentType": "application/json", "S3Uri": f"{folder}/baseline/constraints.json"}}},
            CustomerMetadataProperties={"ProblemType": "BinaryClassification"})["ModelPackageArn"])
    registry.close()
    return arns


def serve(state: StateDir, package_arn: str) -> None:
    """Record an endpoint serving ``package_arn`` as the serving stack's local deploy records it."""
    env = LocalEnvironment()
    model, config = "sts-serving-Model-0123456789", "sts-serving-EndpointConfig-0123456789"
    (state.endpoints / "_models").mkdir(parents=True, exist_ok=True)
    (state.endpoints / "_configs").mkdir(parents=True, exist_ok=True)
    (state.endpoints / "_models" / f"{model}.json").write_text(json.dumps({
        "ModelName": model, "ModelArn": env.arn("sagemaker", f"model/{model.lower()}"),
        "Containers": [{"ModelPackageName": package_arn}], "EnableNetworkIsolation": True}))
    (state.endpoints / "_configs" / f"{config}.json").write_text(json.dumps({
        "EndpointConfigName": config, "EndpointConfigArn": env.arn("sagemaker", f"endpoint-config/{config.lower()}"),
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
                                "InstanceType": "ml.m5.large", "InitialVariantWeight": 1}]}))
    (state.endpoints / ENDPOINT).mkdir(parents=True, exist_ok=True)
    (state.endpoints / ENDPOINT / "resource.json").write_text(json.dumps({
        "EndpointArn": env.arn("sagemaker", f"endpoint/{ENDPOINT}"), "EndpointConfigName": config}))
