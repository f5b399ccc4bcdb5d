"""The demo flow on graded 0-5 similarity scores (regression), end to end.

In its own file so the test runner can run it beside tests/test_demo.py
(the suite distributes whole files over its workers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stsmon.localcloud.registry import Registry
from stsmon.state import StateDir

pytestmark = pytest.mark.slow


def stsmon(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stsmon.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_graded_similarity_scores_run_end_to_end_as_regression(tmp_path, repo_root):
    """Real-valued labels (0-5) through the same flow: a regression model, its metrics, the drill; with
    --manual-approval (MODEL_APPROVAL_STATUS=PendingManualApproval): training registers the version pending,
    the review step approves it (its r2 passes the gate) with an ApprovalDescription, then it is served."""
    sys.path.insert(0, str(repo_root / "tests" / "processing_scripts"))
    import pairs_fixture

    data = pairs_fixture.write_msrp(tmp_path / "graded.txt", pairs_fixture.graded_rows())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root / "tests" / "_netguard"), env.get("PYTHONPATH", "")]))
    env["PATH"] = f"{repo_root / 'node_modules' / '.bin'}:{env['PATH']}"
    state = StateDir(tmp_path / "state")
    args = ["demo", "--state-dir", str(state.root), "--assembly", str(tmp_path / "cdk.out"), "--input-data", str(data),
            "-c", "PROBLEM_TYPE=Regression", "-c", "QUALITY_METRIC=r2", "-c", "QUALITY_THRESHOLD=-5", "--manual-approval"]
    try:
        run = stsmon(args, cwd=repo_root, env=env)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Completed, r2 " in run.stdout
        package = Registry(state.registry_db).latest_approved_package("stsPackageGroup")
        assert f"{package['ModelPackageArn']} is PendingManualApproval: the review step approves it" in run.stdout
        assert f"v{package['ModelPackageVersion']}: PendingManualApproval -> Approved" in run.stdout
        group_version = f"stsPackageGroup/{package['ModelPackageVersion']}"
        for status in ("PendingManualApproval", "Approved"):  # printed by train, then by approve
            assert f"event: SageMaker Model Package State Change: {group_version} {status} -> " in run.stdout
        assert package["ApprovalDescription"].startswith("approved by stsmon demo --manual-approval")
        events = [json.loads(line) for line in (state.root / "events" / "events.jsonl").read_text().splitlines()]
        assert [(e["Event"]["detail"]["ModelApprovalStatus"], len(e["Deliveries"])) for e in events
                if e["Event"]["detail-type"] == "SageMaker Model Package State Change"] == \
            [("PendingManualApproval", 1), ("Approved", 1)]
        evaluation = json.loads(state.s3_path(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]).read_text())
        assert set(evaluation["regression_metrics"]) >= {"mae", "mse", "rmse", "r2"}
        traffic = json.loads((state.root / "demo" / "testendpoint_out.json").read_text())
        assert all(isinstance(r["prediction"]["score"], float) for r in traffic["inferences"])
        summary = json.loads((state.root / "demo" / "demo_summary.json").read_text())
        assert summary["monitor_clean"]["status"] == "Completed"
        assert summary["monitor_drill"]["status"] == "CompletedWithViolations"
        assert {"mae", "mse", "rmse"} & set(summary["monitor_drill"]["violations"])
    finally:
        stsmon(["cleanup", "--state-dir", str(state.root), "--yes"], cwd=repo_root, env=env, timeout=120)
