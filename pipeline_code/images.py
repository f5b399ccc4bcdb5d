"""Image URIs and ECR repositories of the SageMaker images we use, offline.

Read from the SDK's bundled image-URI tables (no AWS call, no SDK import:
the tables are JSON files inside the sagemaker-core package), so the
foundation stack can scope ECR permissions without importing the SDK.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=None)
def _table(framework: str) -> dict:
    # find_spec imports only the tiny "sagemaker" namespace package, not sagemaker.core.
    spec = importlib.util.find_spec("sagemaker.core")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("sagemaker-core is not installed (pip install -r requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "image_uri_config" / f"{framework}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _registry(versions: dict, region: str, what: str) -> str:
    try:
        return versions["registries"][region]
    except KeyError:
        raise ValueError(f"the SageMaker {what} image is not published in region {region}") from None


def sklearn_repository(region: str, version: str) -> tuple[str, str]:
    """(registry account, repository) of the SageMaker scikit-learn image ``version`` (e.g. ``1.9-0``)."""
    versions = _table("sklearn")["inference"]["versions"]
    if version not in versions:
        raise ValueError(f"scikit-learn image version {version!r} is not in the SageMaker SDK's table "
                         f"(known: {', '.join(versions)})")
    entry = versions[version]
    return _registry(entry, region, f"scikit-learn {version}"), entry["repository"]


def model_monitor_repository(region: str) -> tuple[str, str]:
    """(registry account, repository) of Model Monitor's analyzer image."""
    entry = _table("model-monitor")["versions"][""]
    return _registry(entry, region, "Model Monitor"), entry["repository"]


def model_monitor_image(region: str) -> str:
    account, repository = model_monitor_repository(region)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{repository}:latest"
