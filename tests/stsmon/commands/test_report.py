"""stsmon report (CLI): the page and the terminal summary from the recorded monitoring runs."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitoring"))
from monitoring_deploy import ENDPOINT, deploy_monitoring, run_monitor  # noqa: E402

from stsmon import cli  # noqa: E402
from stsmon.monitoring.synthetic import write_window  # noqa: E402


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    monkeypatch.setenv("STSMON_SCHEDULER_AUTOSTART", "0")
    monkeypatch.chdir(tmp_path)
    return deploy_monitoring(tmp_path)


def test_report_without_runs(deployment, capsys):
    assert cli.main(["report", "--state-dir", str(deployment.state.root)]) == 0
    out = capsys.readouterr().out
    assert "No monitoring runs yet" in out
    assert (deployment.state.root / "reports" / "monitoring" / "index.html").is_file()


@pytest.mark.slow
def test_report_after_runs(deployment, capsys, tmp_path, local_clients):
    for hour in (10, 11):
        write_window(deployment.capture_root, deployment.ground_truth_root, datetime(2026, 11, 27, hour, tzinfo=timezone.utc),
                     200, accuracy=0.85 if hour == 10 else 0.6, seed=hour, endpoint=ENDPOINT, id_prefix=f"h{hour}")
        run_monitor(local_clients(deployment.state), f"2026-11-27T{hour + 1}:00:00Z")
    out_dir = tmp_path / "my-report"
    assert cli.main(["report", "--state-dir", str(deployment.state.root), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "2026-11-27 11:00  Completed" in out and "2026-11-27 12:00  CompletedWithViolations" in out
    assert "2 runs: 1 Completed, 1 CompletedWithViolations, 0 Failed" in out
    page = (out_dir / "index.html").read_text()
    assert "metrics_over_time.png" in page and (out_dir / "confusion_matrix.png").is_file()
    assert page.count("href='") == 2  # each run links its own report.html
