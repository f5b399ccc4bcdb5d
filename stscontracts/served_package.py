"""``Custom::StsApprovedModelPackage``: which model package to serve, resolved at deploy time.

The custom resource's contract (docs/CONTRACTS.md §3), implemented once and
called by both of its runtimes: the Lambda on AWS
(``stacks/lambdas/approved_package.py``, which ships this package in its
asset and adds CloudFormation's response protocol) and the local runtime's
handler (``stsmon/endpoint/handlers.py``, with the local registry and
buckets). Both hand in boto3-shaped ``sagemaker`` and ``s3`` clients; this
module calls nothing else and imports only the standard library.

Properties:
    ModelPackageGroupName   the group to search.
    ModelPackageArn         optional: serve exactly this package (pinned).
    EndpointName            optional: use the package this endpoint serves
                            (the monitoring stack's view of "deployed").
    MetricNames             quality metrics whose thresholds to read from the
                            package's constraints.json.
    Refresh                 any text; a new value makes the next deploy look
                            up the package again (see docs/aws.md).

Attributes (Fn::GetAtt): ModelPackageArn, ModelPackageVersion, ModelDataUrl,
Image, BaselineConstraintsUri, BaselineStatisticsUri, BaselineUri,
DataQualityBaselineUri (the folder of ``DriftCheckBaselines.ModelDataQuality``;
a package without one: BaselineUri, where the monitor finds no data-quality
baseline and says so), and per metric ``<metric>Threshold`` /
``<metric>Comparison``.

Lifecycle. The *selection* is the properties that decide which package is
served (group, pinned ARN, endpoint, Refresh); ``MetricNames`` only decides
which thresholds are read. The physical id records what is served and the
digest of the selection that chose it, plus the one before::

    served=<package ARN>;selection=<digest>[;previous=<package ARN>;previous-selection=<digest>]

- Create resolves (pinned, else the endpoint's package, else the latest
  Approved one) and answers ``served=…;selection=…``.
- Update with the selection the resource already has (only ``MetricNames``
  changed, or the rollback of an update that failed on this resource) keeps
  the served package and the id: no lookup, no replacement.
- Update with the selection recorded as *previous* is the rollback of an
  update that moved to another package (CloudFormation sends the previous
  properties): it serves the previous package again, without a lookup, so a
  rolled-back stack serves and monitors what it served before, not the
  newest package that made the update fail.
- Any other Update looks the package up again and answers a new id (a
  replacement; CloudFormation's Delete of the old id does nothing).
- Delete calls nothing and answers the id it was sent, whatever it is (a
  failed Create's, an id CloudFormation invented, an older format's), so it
  is idempotent and cannot fail.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from . import metrics
from .errors import ContractError
from .names import CONSTRAINTS_KEY

RESOURCE_TYPE = "Custom::StsApprovedModelPackage"
#: For a metric the constraints lack: thresholds that never alarm.
NEVER_ALARMS = {"LessThanThreshold": -1.0e30, "GreaterThanThreshold": 1.0e30}
#: The properties that choose the package.
SELECTION = ("ModelPackageGroupName", "ModelPackageArn", "EndpointName", "Refresh")


class ServedPackageError(ContractError):
    """Why no package can be served (no Approved one, no baseline, a constraints file that is not JSON):
    a message for people; the Lambda answers FAILED with it, the local runtime prints it."""


def selection_digest(props: dict) -> str:
    """A short digest of the properties that choose the package."""
    chosen = {key: str(props.get(key) or "") for key in SELECTION}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Served:
    """What a physical id records: the served package, the selection digest, and the previous pair."""

    arn: str
    selection: str
    previous_arn: str = ""
    previous_selection: str = ""

    def physical_id(self) -> str:
        parts = [f"served={self.arn}", f"selection={self.selection}"]
        if self.previous_arn:
            parts += [f"previous={self.previous_arn}", f"previous-selection={self.previous_selection}"]
        return ";".join(parts)

    @classmethod
    def parse(cls, physical_id: str | None) -> Served | None:
        """None for an id this module did not write (a failed Create's, an older format's)."""
        fields = dict(part.partition("=")[::2] for part in (physical_id or "").split(";"))
        if not fields.get("served") or not fields.get("selection"):
            return None
        return cls(fields["served"], fields["selection"], fields.get("previous", ""), fields.get("previous-selection", ""))


def handle(
    request_type: str, props: dict, old_props: dict, *, physical_id: str | None = None, sagemaker: Any, s3: Any,
) -> tuple[str, dict]:
    """``(physical id, attributes)`` for one request (see the module docstring)."""
    if request_type == "Delete":
        return physical_id or "", {}
    selection = selection_digest(props)
    current = Served.parse(physical_id) if request_type == "Update" else None
    if current is not None and selection == current.selection:
        served = current
    elif current is not None and current.previous_arn and selection == current.previous_selection:
        served = Served(current.previous_arn, selection)
    else:
        arn = resolve(sagemaker, props)
        served = Served(arn, selection, current.arn, current.selection) if current else Served(arn, selection)
    package = sagemaker.describe_model_package(ModelPackageName=served.arn)
    data = package_attributes(package)
    data.update(thresholds(s3, data["BaselineConstraintsUri"], props.get("MetricNames") or []))
    return served.physical_id(), data


def resolve(sagemaker: Any, props: dict) -> str:
    """The package the properties ask for: pinned, else the endpoint's, else the latest Approved."""
    arn = props.get("ModelPackageArn") or ""
    if not arn and props.get("EndpointName"):
        arn = served_package(sagemaker, props["EndpointName"])
    return arn or latest_approved(sagemaker, props["ModelPackageGroupName"])


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
        raise ServedPackageError(
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
    quality = package.get("ModelMetrics", {}).get("ModelQuality", {})
    constraints = (drift.get("Constraints") or quality.get("Constraints") or {}).get("S3Uri", "")
    statistics = (drift.get("Statistics") or {}).get("S3Uri", "")
    data_quality = ((package.get("DriftCheckBaselines", {}).get("ModelDataQuality") or {}).get("Constraints")
                    or {}).get("S3Uri", "")
    if not constraints:
        raise ServedPackageError(
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
        "DataQualityBaselineUri": posixpath.dirname(data_quality or constraints) + "/",
    }


def _comparison(metric: str) -> str:
    """The registry's operator for a metric the constraints lack (LessThanThreshold for one it does not know)."""
    for row in metrics.METRICS:
        if row.name == metric:
            return row.comparison_operator
    return "LessThanThreshold"


def thresholds(s3: Any, constraints_uri: str, metric_names: list[str]) -> dict:
    """``<metric>Threshold`` and ``<metric>Comparison`` for each metric, from constraints.json."""
    parsed = urlparse(constraints_uri)
    body = s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ServedPackageError(f"{constraints_uri} is not valid JSON: {exc}") from None
    section = next((document[key] for key in CONSTRAINTS_KEY.values() if document.get(key)), {})
    result = {}
    for metric in metric_names:
        entry = section.get(metric)
        if entry and "threshold" in entry and "comparison_operator" in entry:
            result[f"{metric}Threshold"] = str(float(entry["threshold"]))
            result[f"{metric}Comparison"] = entry["comparison_operator"]
        else:
            comparison = _comparison(metric)
            result[f"{metric}Threshold"] = str(NEVER_ALARMS[comparison])
            result[f"{metric}Comparison"] = comparison
    return result
