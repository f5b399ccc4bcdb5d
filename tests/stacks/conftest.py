"""One in-process synth per configuration, shared by the assertion tests.

Each synth runs the cdk-nag packs exactly as app.py does, so a synth that
returns at all has zero unacknowledged findings.
"""

from __future__ import annotations

import pytest

from cdk_helpers import Synth, synthesize


@pytest.fixture(scope="session")
def dev(tmp_path_factory) -> Synth:
    """The default configuration (dev profile, pipeline monitor backend)."""
    return synthesize(tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory) -> Synth:
    """Prod profile, model-monitor backend, a pinned package and changed settings."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-prod"),
        {
            "DEPLOY_PROFILE": "prod",
            "MONITOR_BACKEND": "model-monitor",
            "MODEL_PACKAGE_ARN": "arn:aws:sagemaker:us-east-1:000000000000:model-package/stspackagegroup/3",
            "CAPTURE_SAMPLING_PERCENTAGE": "25",
            "ALARM_LATENCY_MS": "250",
            "DATA_RETENTION_DAYS": "400",
            "BASE_JOB_PREFIX": "para",
        },
    )
