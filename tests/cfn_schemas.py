"""CloudFormation's resource schemas as cfn-lint (a pinned, maintained test tool) bundles them.

``Ref`` of a registry resource returns its ``primaryIdentifier`` (the CloudFormation
User Guide, "Ref" and "Resource type schema"): the name for some types (a bucket, a
pipeline, an alarm), the ARN for others (a SageMaker endpoint, endpoint config,
model, model package group; an SNS topic). The local runtime must give the same.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cfnlint


@lru_cache(maxsize=None)
def _providers(region: str) -> dict:
    base = Path(cfnlint.__file__).parent / "data" / "schemas"
    return json.loads((base / "providers" / f"{region}.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def resource_schema(resource_type: str, region: str = "us-east-1") -> dict | None:
    """The schema of ``resource_type`` (None for custom resources and types cfn-lint does not know)."""
    digest = _providers(region).get(resource_type)
    if not isinstance(digest, str):
        return None
    path = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources" / f"{digest}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def primary_identifier(resource_type: str) -> list[str] | None:
    """Property names of the primary identifier, e.g. ``["EndpointArn"]``."""
    schema = resource_schema(resource_type)
    if not schema or "primaryIdentifier" not in schema:
        return None
    return [p.rsplit("/", 1)[-1] for p in schema["primaryIdentifier"]]
