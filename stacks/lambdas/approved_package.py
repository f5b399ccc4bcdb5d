"""Custom::StsApprovedModelPackage - which model package to serve, resolved at deploy time.

Properties (see docs/CONTRACTS.md §3):
    ModelPackageGroupName   the group to search.
    ModelPackageArn         optional: serve exactly this package (pinned).
    EndpointName            optional: use the package this endpoint serves
                            (the monitoring stack's view of "deployed").
    MetricNames             quality metrics whose thresholds to read from the
                            package's constraints.json.
    Refresh                 any text; changing it makes CloudFormation call
                            this function again (see docs/aws.md).

Attributes (Fn::GetAtt): ModelPackageArn, ModelPackageVersion, ModelDataUrl,
Image, BaselineConstraintsUri, BaselineStatisticsUri, BaselineUri, and per
metric ``<metric>Threshold`` / ``<metric>Comparison``.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any
from urllib.parse import urlparse

import boto3

import cfn_response
from cfn_response import UserFacingError

#: For a metric the constraints lack: thresholds that never alarm.
NEVER_ALARMS = {"LessThanThreshold": -1.0e30, "GreaterThanThreshold": 1.0e30}
LOWER_IS_BETTER = {"mae", "mse", "rmse"}


def handler(event: dict, context: Any) -> None:
    cfn_response.run(event, context, handle)


def handle(request_type: str, props: dict, old_props: dict, *, sagemaker: Any = None, s3: Any = None) -> tuple[str, dict]:
    group = props["ModelPackageGroupName"]
    physical_id = f"{group}-served-package"
    if request_type == "Delete":
        return physical_id, {}
    sagemaker = sagemaker or boto3.client("sagemaker")
    s3 = s3 or boto3.client("s3")
    arn = props.get("ModelPackageArn") or ""
    if not arn and props.get("EndpointName"):
        arn = served_package(sagemaker, props["EndpointName"])
    if not arn:
        arn = latest_approved(sagemaker, group)
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    data = package_attributes(package)
    data.update(thresholds(s3, data["BaselineConstraintsUri"], props.get("MetricNames") or []))
    return physical_id, data


def latest_approved(sagemaker: Any, group: str) -> str:
    response = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    packages = response.get("ModelPackageSummaryList", [])
    if not packages:
        raise UserFacingError(
            f"No Approved model package in group {group}. Run the training pipeline first "
            "(stsmon train --target aws), approve a package, or pin one with -c MODEL_PACKAGE_ARN=..."
        )
    return packages[0]["ModelPackageArn"]


def served_package(sagemaker: Any, endpoint: str) -> str:
    """The model package behind an endpoint's first variant ("" if it has none)."""
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    model = sagemaker.describe_model(ModelName=variants[0]["ModelName"])
    containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
    return containers[0].get("ModelPackageName", "")


def package_attributes(package: dict) -> dict:
    container = package["InferenceSpecification"]["Containers"][0]
    drift = package.get("DriftCheckBaselines", {}).get("ModelQuality", {})
    metrics = package.get("ModelMetrics", {}).get("ModelQuality", {})
    constraints = (drift.get("Constraints") or metrics.get("Constraints") or {}).get("S3Uri", "")
    statistics = (drift.get("Statistics") or {}).get("S3Uri", "")
    if not constraints:
        raise UserFacingError(
            f"Model package {package['ModelPackageArn']} has no baseline constraints "
            "(DriftCheckBaselines.ModelQuality.Constraints); register it with the training pipeline."
        )
    return {
        "ModelPackageArn": package["ModelPackageArn"],
        "ModelPackageVersion": str(package.get("ModelPackageVersion", "")),
        "ModelDataUrl": container.get("ModelDataUrl", ""),
        "Image": container.get("Image", ""),
        "BaselineConstraintsUri": constraints,
        "BaselineStatisticsUri": statistics,
        "BaselineUri": posixpath.dirname(constraints) + "/",
    }


def thresholds(s3: Any, constraints_uri: str, metric_names: list[str]) -> dict:
    """``<metric>Threshold`` and ``<metric>Comparison`` for each metric, from constraints.json."""
    parsed = urlparse(constraints_uri)
    body = s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise UserFacingError(f"{constraints_uri} is not valid JSON: {exc}") from None
    section = document.get("binary_classification_constraints") or document.get("regression_constraints") or {}
    result = {}
    for metric in metric_names:
        entry = section.get(metric)
        if entry and "threshold" in entry and "comparison_operator" in entry:
            result[f"{metric}Threshold"] = str(float(entry["threshold"]))
            result[f"{metric}Comparison"] = entry["comparison_operator"]
        else:
            comparison = "GreaterThanThreshold" if metric in LOWER_IS_BETTER else "LessThanThreshold"
            result[f"{metric}Threshold"] = str(NEVER_ALARMS[comparison])
            result[f"{metric}Comparison"] = comparison
    return result
