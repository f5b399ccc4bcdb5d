"""Image repositories come from the SDK's tables for the configured version, offline."""

from __future__ import annotations

import pytest

from pipeline_code.images import sklearn_repository


def test_the_configured_scikit_learn_version_picks_its_registry_entry():
    assert sklearn_repository("us-east-1", "1.9-0") == ("683313688378", "sagemaker-scikit-learn")
    assert sklearn_repository("eu-west-1", "1.9-0") == ("141502667606", "sagemaker-scikit-learn")


def test_an_unknown_version_or_region_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'0\.1-0' is not in the SageMaker SDK's table \(known: .*1\.9-0"):
        sklearn_repository("us-east-1", "0.1-0")
    with pytest.raises(ValueError, match="scikit-learn 1.9-0 image is not published in region mars-1"):
        sklearn_repository("mars-1", "1.9-0")
