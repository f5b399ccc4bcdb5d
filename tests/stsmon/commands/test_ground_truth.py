"""stsmon ground-truth (CLI): labels for the captured ids, from the traffic record."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitoring"))
from monitoring_deploy import ENDPOINT, deploy_monitoring  # noqa: E402

from stsmon import cli  # noqa: E402
from stscontracts import documents  # noqa: E402
from stscontracts.names import hour_prefix  # noqa: E402
from stsmon.monitoring.synthetic import write_window  # noqa: E402


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    monkeypatch.setenv("STSMON_SCHEDULER_AUTOSTART", "0")
    monkeypatch.chdir(tmp_path)
    return deploy_monitoring(tmp_path)


def traffic(deployment, window):
    deployment.state.runs.mkdir(parents=True, exist_ok=True)
    record = {"inferences": [{"inference_id": str(i), "label": int(y)} for i, y in zip(window.ids, window.y_true)]}
    (deployment.state.runs / "traffic-20261127T120000.json").write_text(json.dumps(record))


def labels_written(deployment):
    now = datetime.now(timezone.utc)
    folder = deployment.ground_truth_root / hour_prefix(now)
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()]


def test_true_and_noisy_labels_for_the_current_hour(deployment, capsys):
    now = datetime.now(timezone.utc)
    window = write_window(deployment.capture_root, deployment.state.root / "unused", now, 200, endpoint=ENDPOINT, files=1)
    traffic(deployment, window)
    state = str(deployment.state.root)
    assert cli.main(["ground-truth", "--state-dir", state]) == 0
    out = capsys.readouterr().out
    assert "wrote 200 ground-truth labels (true) for 200 captured inferences" in out
    labels = labels_written(deployment)
    assert {r["eventMetadata"]["eventId"]: int(r["groundTruthData"]["data"]) for r in labels} == {
        str(i): int(y) for i, y in zip(window.ids, window.y_true)}
    # The files that join the parts follow their schemas: the labels written, the captures they answer.
    assert all(documents.problems(r, documents.GROUND_TRUTH_RECORD) == [] for r in labels)
    captures = [json.loads(line) for p in window.capture_files for line in p.read_text().splitlines()]
    assert len(captures) == 200 and all(documents.problems(r, documents.CAPTURE_RECORD) == [] for r in captures)
    broken = json.loads(json.dumps(labels[0]))
    broken["groundTruthData"].pop("encoding")
    broken["eventMetadata"]["eventId"] = ""
    assert documents.problems(broken, documents.GROUND_TRUTH_RECORD) == [
        "eventMetadata.eventId: '' should be non-empty", "groundTruthData: 'encoding' is a required property"]

    assert cli.main(["ground-truth", "--state-dir", state, "--mode", "noise", "--error-rate", "0.3", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "noise:" in out and "differ from the truth" in out
    records = sorted(deployment.state.runs.glob("ground-truth-*.json"))
    assert [json.loads(p.read_text())["mode"] for p in records] in (["true", "noise"], ["noise", "true"])


def test_random_labels_need_no_traffic_record(deployment, capsys):
    write_window(deployment.capture_root, deployment.state.root / "unused", datetime.now(timezone.utc), 50,
                 endpoint=ENDPOINT, files=1)
    assert cli.main(["ground-truth", "--state-dir", str(deployment.state.root), "--mode", "random"]) == 0
    assert len(labels_written(deployment)) == 50


def test_clear_errors(deployment, capsys):
    state = str(deployment.state.root)
    assert cli.main(["ground-truth", "--state-dir", state]) == 1
    assert "no traffic record" in capsys.readouterr().err
    assert cli.main(["ground-truth", "--state-dir", state, "--mode", "random"]) == 1
    assert "no captured inferences in the window" in capsys.readouterr().err
    assert cli.main(["ground-truth", "--state-dir", state, "--mode", "random", "--window", "soon"]) == 2
    assert "--window: end 'soon' is not an ISO-8601 time" in capsys.readouterr().err


def test_not_deployed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["ground-truth", "--state-dir", str(tmp_path / "empty"), "--mode", "random"]) == 3
    assert "run `stsmon deploy` first" in capsys.readouterr().err
