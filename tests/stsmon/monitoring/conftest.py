"""Fixtures of the monitoring tests (helpers in monitoring_deploy.py)."""

from __future__ import annotations

import pytest
from monitoring_deploy import MonitoringDeployment, deploy_monitoring


@pytest.fixture
def deployment(tmp_path, monkeypatch) -> MonitoringDeployment:
    monkeypatch.setenv("STSMON_SCHEDULER_AUTOSTART", "0")
    return deploy_monitoring(tmp_path)
