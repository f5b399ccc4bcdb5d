"""stsmon monitor (CLI): run now through the local pipeline, status, scheduler start/stop."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitoring"))
from monitoring_deploy import ENDPOINT, deploy_monitoring  # noqa: E402

from stsmon import cli  # noqa: E402
from stsmon.monitoring import metrics  # noqa: E402
from stsmon.monitoring.synthetic import write_window  # noqa: E402

H12 = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    monkeypatch.setenv("STSMON_SCHEDULER_AUTOSTART", "0")
    monkeypatch.chdir(tmp_path)
    return deploy_monitoring(tmp_path)


@pytest.mark.slow
def test_run_prints_result_counts_violations_and_alarm(deployment, capsys):
    deployment.write_constraints(accuracy=0.9, f1=0.5)
    metrics.save_alarm(deployment.state, "sts-quality-accuracy", "arn:x", {
        "Namespace": "stsmodelmonitor", "MetricName": "accuracy", "Statistic": "Average", "Period": "3600",
        "EvaluationPeriods": "1", "Threshold": "0.9", "ComparisonOperator": "LessThanThreshold",
        "Dimensions": [{"Name": "Endpoint", "Value": ENDPOINT}, {"Name": "MonitoringSchedule", "Value": "sts-model-quality"}]}, now=H12)
    write_window(deployment.capture_root, deployment.ground_truth_root, H12, 300, accuracy=0.8, endpoint=ENDPOINT)
    state = str(deployment.state.root)
    code = cli.main(["monitor", "run", "--state-dir", state, "--window", "2026-11-27T13:00:00Z"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "MonitorModelQuality Succeeded" in out
    assert "Window 2026-11-27T12:00:00Z .. 2026-11-27T13:00:00Z (UTC, end excluded): CompletedWithViolations" in out
    assert "captured 300, labelled 300, matched 300 (coverage 100%)" in out
    assert "violation: Metric accuracy with" in out and "was LessThanThreshold 0.9" in out
    assert "alarm sts-quality-accuracy: INSUFFICIENT_DATA -> ALARM" in out
    assert "Report: " in out and out.strip().endswith("report.html")
    code = cli.main(["monitor", "run", "--state-dir", state, "--window", "2026-11-27T13:00:00Z", "--fail-on-violations"])
    assert code == 1 and "constraint violation(s)" in capsys.readouterr().err


@pytest.mark.slow
def test_failed_run_exits_1_with_the_reason(deployment, capsys):
    write_window(deployment.capture_root, deployment.ground_truth_root, H12, 10, endpoint=ENDPOINT)
    code = cli.main(["monitor", "run", "--state-dir", str(deployment.state.root), "--window", "2026-11-27T09:00:00Z"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Execution arn:aws:sagemaker:us-east-1:000000000000:pipeline/stspipelinemonitoring/execution/" in captured.out
    assert "Status: Failed — no capture records in the window [2026-11-27T08:00:00Z, 2026-11-27T09:00:00Z)" in captured.out
    assert "monitoring failed: no capture records in the window" in captured.err


def test_bad_parameter_and_window_are_usage_errors(deployment, capsys):
    state = str(deployment.state.root)
    assert cli.main(["monitor", "run", "--state-dir", state, "-p", "WindowHours"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["monitor", "run", "--state-dir", state, "--window", "soon"]) == 2


def test_status_start_stop_without_a_schedule(deployment, capsys):
    state = str(deployment.state.root)
    assert cli.main(["monitor", "status", "--state-dir", state]) == 0
    out = capsys.readouterr().out
    assert "Scheduler process: not running" in out and "No schedule deployed locally" in out
    assert cli.main(["monitor", "start", "--state-dir", state]) == 3
    assert "no schedule deployed" in capsys.readouterr().err
    assert cli.main(["monitor", "stop", "--state-dir", state]) == 0
    assert "Scheduler was not running." in capsys.readouterr().out
