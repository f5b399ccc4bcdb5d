"""The versions of the model package group, as SageMaker's registry describes them.

A :class:`Version` is one model package: its number, approval status (and
the ``ApprovalDescription`` SageMaker stores with it), creation time, the
test metrics of its evaluation (``ModelMetrics.ModelQuality.Statistics``,
the pipeline's ``evaluation.json``) and whether the endpoint serves it. What
the endpoint serves is read as the monitoring stack's custom resource reads
it (:func:`stscontracts.served_package.served_package`: endpoint -> endpoint
config -> model -> ``ModelPackageName``), so it is what answers requests,
not what a stack output said at its last deploy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from stscontracts import metrics as metric_registry
from stscontracts import names, served_package

from ..clients.errors import error_code, error_message, is_not_found
from ..errors import NotDeployedError, StsmonError, UsageError

#: Codes SageMaker answers for an endpoint, config or model that does not exist.
_ABSENT = ("ValidationException", "ResourceNotFound", "ValidationError")


@dataclass(frozen=True)
class Version:
    """One model package of the group (see the module docstring)."""

    arn: str
    number: int
    status: str
    created: datetime
    description: str = ""  # ApprovalDescription
    problem_type: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_uri: str = ""
    served: bool = False
    package: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class Gate:
    """The configured quality gate (``QUALITY_METRIC`` / ``QUALITY_THRESHOLD``) applied to a version."""

    metric: str
    threshold: float
    higher_is_better: bool
    value: float | None

    @property
    def passes(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    def describe(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        if self.value is None:
            return f"its evaluation has no {self.metric} (the gate needs {self.metric} {sign} {self.threshold:g})"
        verdict = "passes" if self.passes else "fails"
        return f"{self.metric} {self.value:.4f} {verdict} the gate ({self.metric} {sign} {self.threshold:g})"


def metrics_of(report: dict[str, Any]) -> dict[str, float]:
    """``{"accuracy": 0.79, ...}`` from an evaluation.json in SageMaker's model-metrics form."""
    found: dict[str, float] = {}
    for key, block in report.items():
        if key.endswith("_metrics") and isinstance(block, dict):
            for name, value in block.items():
                if isinstance(value, dict) and isinstance(value.get("value"), (int, float)):
                    found[name] = float(value["value"])
    return found


def read_json(s3: Any, uri: str) -> Any:
    """A JSON document in S3 (through the target's S3 client)."""
    parsed = urlparse(uri)
    try:
        body = s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    except ClientError as exc:
        raise StsmonError(f"cannot read {uri}: {error_message(exc)}") from None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise StsmonError(f"{uri} is not valid JSON: {exc}") from None


def served_arn(clients: Any) -> str:
    """The package the endpoint serves ("" when no endpoint is deployed or it serves no package)."""
    try:
        return served_package.served_package(clients.sagemaker, clients.config.endpoint_name)
    except ClientError as exc:
        if error_code(exc) in _ABSENT or is_not_found(exc):
            return ""
        raise StsmonError(f"cannot tell which package {clients.config.endpoint_name} serves: {exc}") from None
    except (KeyError, IndexError):
        return ""


def _summaries(clients: Any, limit: int | None = None) -> list[dict[str, Any]]:
    group = clients.config.model_package_group_name
    found: list[dict[str, Any]] = []
    try:
        pages = clients.sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
        for page in pages:
            found += page.get("ModelPackageSummaryList", [])
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found
    except ClientError as exc:
        if is_not_found(exc):
            raise NotDeployedError(f"model package group {group} does not exist: "
                                   f"{clients.deploy_hint(clients.config.stack_name('foundation'))}") from None
        raise StsmonError(f"cannot list the versions of {group}: {error_message(exc)}") from None


def describe(clients: Any, arn: str, *, served: str = "", with_metrics: bool = True) -> Version:
    """One version, described (and its evaluation's metrics read, unless ``with_metrics`` is False)."""
    package = clients.sagemaker.describe_model_package(ModelPackageName=arn)
    uri = (((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri", "")
    values: dict[str, float] = {}
    if with_metrics and uri:
        values = metrics_of(read_json(clients.s3, uri))
    return Version(
        arn=package["ModelPackageArn"],
        number=int(package.get("ModelPackageVersion") or package["ModelPackageArn"].rsplit("/", 1)[-1]),
        status=package.get("ModelApprovalStatus", ""),
        created=package["CreationTime"],
        description=package.get("ApprovalDescription", ""),
        problem_type=(package.get("CustomerMetadataProperties") or {}).get("ProblemType", ""),
        metrics=values,
        metrics_uri=uri,
        served=bool(served) and served.lower() == package["ModelPackageArn"].lower(),
        package=package,
    )


def list_versions(clients: Any, *, with_metrics: bool = True, limit: int | None = None) -> list[Version]:
    """The versions of the configured group, newest first (all, or the newest ``limit``)."""
    served = served_arn(clients)
    return [describe(clients, s["ModelPackageArn"], served=served, with_metrics=with_metrics)
            for s in _summaries(clients, limit)]


_REF = re.compile(r"v?(\d+)", re.IGNORECASE)


def find(versions: list[Version], ref: str) -> Version:
    """The version ``ref`` names: ``3``, ``v3`` or its ARN."""
    match = _REF.fullmatch(ref.strip())
    for version in versions:
        if (match and version.number == int(match.group(1))) or version.arn.lower() == ref.strip().lower():
            return version
    known = ", ".join(v.label for v in sorted(versions, key=lambda v: v.number)) or "none"
    raise UsageError(f"no version {ref!r} in the model package group (versions: {known}; see `stsmon model list`)")


def gate(clients: Any, version: Version) -> Gate:
    """The configured quality gate on ``version``'s evaluation."""
    cfg = clients.config
    problem_type = version.problem_type or cfg.problem_type
    try:
        higher = metric_registry.higher_is_better(cfg.quality_metric, problem_type)
    except (KeyError, ValueError):
        higher = metric_registry.higher_is_better(cfg.quality_metric, cfg.problem_type)
    return Gate(cfg.quality_metric, cfg.quality_threshold, higher, version.metrics.get(cfg.quality_metric))


def metric_names(problem_type: str) -> tuple[str, ...]:
    """The metrics shown for a problem type (the registry's monitored ones, in report order)."""
    return metric_registry.monitored_metrics(problem_type or names.BINARY_CLASSIFICATION)
