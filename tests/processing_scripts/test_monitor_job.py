"""processing_scripts/monitor.py: windows, merge, counts, metrics, constraints, outputs.

Captures and labels are written in the documented shapes (docs/CONTRACTS.md
§2) with stsmon.monitoring.records; every edge case has one deterministic
outcome with its counts; exit code 0 for Completed and
CompletedWithViolations, 3 for a Failed window (outputs written first), 2
when the arguments or the baseline are unusable.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from processing_scripts import model_metrics, monitor, monitor_outputs
import stscontracts
from stscontracts import documents, names
from stscontracts.names import hour_prefix
from stscontracts.records import ground_truth_record
from stsmon.monitoring.records import capture_record, write_jsonl
from stsmon.monitoring.synthetic import write_constraints, write_window

H12 = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
EXEC = "2026-11-27T13:05:00Z"  # default window: [12:00, 13:00)
ENDPOINT = "sts-endpoint"


class Env:
    """Folders of one monitor run, and helpers to fill them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.capture = root / "capture"
        self.gt = root / "ground_truth"
        self.baseline = root / "baseline"
        self.out = root / "out"
        self.message = root / "opt-ml-output" / "message"
        self._n = 0

    def captures(self, rows, *, hour=H12, output_type="text/csv", name=None, extra_lines=(), endpoint=ENDPOINT):
        """rows: (inference_id or None, output text[, event_id]) -> one capture file in ``hour``."""
        folder = self.capture / endpoint / "AllTraffic" / hour_prefix(hour)
        records = []
        for i, row in enumerate(rows):
            iid, output = row[0], row[1]
            event_id = row[2] if len(row) > 2 else f"evt-{self._n}-{i}"
            records.append(capture_record(event_id=event_id, inference_id=iid,
                                          inference_time=hour + timedelta(seconds=i), output=output,
                                          output_type=output_type, input_data='"a ""b""",c\n'))
        self._n += 1
        path = folder / (name or f"00-00-000-{self._n:04d}.jsonl")
        write_jsonl(path, records)
        if extra_lines:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("".join(extra_lines))
        return path

    def labels(self, pairs, *, hour=H12, name=None, extra_lines=()):
        folder = self.gt / hour_prefix(hour)
        self._n += 1
        path = folder / (name or f"labels-{self._n:04d}.jsonl")
        write_jsonl(path, [ground_truth_record(k, v) for k, v in pairs])
        if extra_lines:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("".join(extra_lines))
        return path

    def run(self, *args: str, execution_time: str = EXEC) -> tuple[int, dict]:
        argv = ["--capture-dir", str(self.capture), "--ground-truth-dir", str(self.gt),
                "--baseline-dir", str(self.baseline), "--output-dir", str(self.out),
                "--exit-message-file", str(self.message),
                "--execution-time", execution_time, "--endpoint-name", ENDPOINT,
                "--schedule-name", "sts-monitor", *args]
        code = monitor.main(argv)
        written = code in (0, monitor.EXIT_FAILED) and (self.out / monitor.RESULT_FILE).is_file()
        result = json.loads((self.out / monitor.RESULT_FILE).read_text()) if written else {}
        return code, result


@pytest.fixture
def env(tmp_path) -> Env:
    e = Env(tmp_path)
    write_constraints(e.baseline, accuracy=0.7, f1=0.7, auc=None)
    return e


def binary_rows(y_pred, prob=None, prefix="sts"):
    prob = prob if prob is not None else [0.9 if p else 0.1 for p in y_pred]
    return [(f"{prefix}_{i}", f"{p},{q}\n") for i, (p, q) in enumerate(zip(y_pred, prob))]


# ------------------------------------------------------------------ windows and time zones


@pytest.mark.parametrize(
    "execution_time, window_end, hours, delay, expected",
    [
        ("2026-11-27T13:05:00Z", "", 1, 0, ("2026-11-27T12:00:00Z", "2026-11-27T13:00:00Z")),
        ("2026-11-27T13:00:00Z", "", 1, 0, ("2026-11-27T12:00:00Z", "2026-11-27T13:00:00Z")),
        ("2026-11-27T12:59:59.999Z", "", 1, 0, ("2026-11-27T11:00:00Z", "2026-11-27T12:00:00Z")),
        ("2026-11-27T13:05:00Z", "", 2, 3, ("2026-11-27T08:00:00Z", "2026-11-27T10:00:00Z")),
        ("2026-11-27T15:05:00+02:00", "", 1, 0, ("2026-11-27T12:00:00Z", "2026-11-27T13:00:00Z")),
        ("2026-11-27T13:05:00", "", 1, 0, ("2026-11-27T12:00:00Z", "2026-11-27T13:00:00Z")),  # naive = UTC
        ("2026-11-27T13:05:00Z", "2026-11-27T09:40:00-05:00", 1, 7, ("2026-11-27T13:00:00Z", "2026-11-27T14:00:00Z")),
        ("2026-01-01T00:30:00Z", "", 1, 0, ("2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z")),
    ],
)
def test_window_is_whole_utc_hours(execution_time, window_end, hours, delay, expected):
    start, end = monitor.compute_window(monitor.parse_time(execution_time, "t"), window_end, hours, delay)
    assert (monitor.iso(start), monitor.iso(end)) == expected


def test_records_count_by_hour_folder_at_the_window_boundaries(env):
    h11, h13 = H12 - timedelta(hours=1), H12 + timedelta(hours=1)
    env.captures([("a", "1,0.9\n")], hour=h11)
    env.captures([("b", "1,0.9\n"), ("c", "0,0.2\n")], hour=H12)
    env.captures([("d", "1,0.9\n")], hour=h13)
    env.labels([("a", 1), ("b", 1), ("c", 0), ("d", 1)], hour=h13)  # labels arrive in the next hour
    code, result = env.run()
    assert code == 0
    assert result["window"] == {"start": "2026-11-27T12:00:00Z", "end": "2026-11-27T13:00:00Z"}
    assert result["counts"]["captured"] == 2 and result["counts"]["matched"] == 2
    assert result["counts"]["unmatched_labels"] == 2  # a and d: labels of other windows
    assert result["files"] == {"capture": 1, "ground_truth": 1}


def test_labels_written_after_the_execution_hour_are_not_read(env):
    env.captures([("a", "1,0.9\n")])
    env.labels([("a", 1)], hour=H12 + timedelta(hours=2))  # 14:00, after the 13:05 execution
    code, result = env.run()
    assert code == monitor.EXIT_FAILED and result["status"] == "Failed"
    assert result["counts"]["labelled"] == 0 and result["files"]["ground_truth"] == 0


def test_window_of_several_hours_with_a_label_delay(env):
    for k in range(3):
        env.captures([(f"id{k}", "1,0.9\n")], hour=H12 + timedelta(hours=k))
    env.labels([(f"id{k}", 1) for k in range(3)], hour=H12 + timedelta(hours=3))
    code, result = env.run("--window-hours", "2", "--label-delay-hours", "2", execution_time="2026-11-27T16:10:00Z")
    assert result["window"] == {"start": "2026-11-27T12:00:00Z", "end": "2026-11-27T14:00:00Z"}
    assert result["counts"]["captured"] == 2 and result["counts"]["matched"] == 2


def test_other_endpoints_under_the_capture_prefix_are_ignored(env):
    env.captures([("a", "1,0.9\n")])
    env.captures([("z", "1,0.9\n")], endpoint="another-endpoint")
    env.labels([("a", 1), ("z", 1)])
    _, result = env.run()
    assert result["counts"]["captured"] == 1 and result["counts"]["unmatched_labels"] == 1


@pytest.mark.parametrize("below", [ENDPOINT, f"{ENDPOINT}/AllTraffic"])
def test_capture_dir_may_be_the_endpoint_or_variant_folder(env, below):
    """The pipeline passes {capture uri}/{endpoint}/ as --capture-dir."""
    env.captures([("a", "1,0.9\n"), ("b", "0,0.1\n")])
    env.labels([("a", 1), ("b", 0)])
    env.capture = env.capture / below
    _, result = env.run()
    assert result["counts"]["captured"] == 2 and result["counts"]["matched"] == 2


# ------------------------------------------------------------------ the drill


def test_drill_true_labels_complete_and_noisy_labels_violate(tmp_path):
    """True labels: Completed, no violation. 30 % label noise: CompletedWithViolations naming the metrics."""
    clean, noisy = Env(tmp_path / "clean"), Env(tmp_path / "noisy")
    window = write_window(clean.capture, clean.gt, H12, 2000, accuracy=0.9, seed=3, files=2, endpoint=ENDPOINT)
    write_window(noisy.capture, tmp_path / "unused", H12, 2000, accuracy=0.9, seed=3, files=2, endpoint=ENDPOINT)
    rng = np.random.default_rng(7)
    flip = rng.random(len(window.y_true)) < 0.3
    noisy_labels = np.where(flip, 1 - window.y_true, window.y_true)
    noisy.labels(zip(window.ids.tolist(), noisy_labels.tolist()))
    for e in (clean, noisy):
        write_constraints(e.baseline, accuracy=0.8, f1=0.8, auc=0.8)

    code, result = clean.run()
    assert code == 0 and result["status"] == "Completed" and result["violations"] == []
    assert result["metrics"]["accuracy"] == pytest.approx(0.9, abs=0.03)
    assert len(result["checks"]) == 3 and {c["status"] for c in result["checks"]} == {"OK"}

    code, result = noisy.run()
    assert code == 0 and result["status"] == "CompletedWithViolations"
    named = {v["metric_name"] for v in result["violations"]}
    assert {"accuracy", "f1"} <= named
    for v in result["violations"]:
        assert v["constraint_check_type"] == "LessThanThreshold"
        assert v["description"].startswith(f"Metric {v['metric_name']} with ")
    violations_file = json.loads((noisy.out / "constraint_violations.json").read_text())
    assert violations_file == {"violations": result["violations"]}
    cw = json.loads((noisy.out / "cloudwatch_metrics.json").read_text())
    by_name = {d["MetricName"]: d["Value"] for d in cw["MetricData"]}
    assert by_name["accuracy"] == pytest.approx(result["metrics"]["accuracy"])
    assert by_name["constraint_violations"] == len(result["violations"])


# ------------------------------------------------------------------ edge cases


def test_empty_window_fails_with_reason_and_all_outputs(env, capsys):
    """Fault 6: a Failed window used to exit 0, so the job, the step and the pipeline execution
    succeeded and SageMaker's ExecutionFailed never counted it. Now the outputs are written, then
    the job fails with the reason as its ExitMessage."""
    code, result = env.run()
    assert code == monitor.EXIT_FAILED == 3
    assert result["status"] == "Failed" and "no capture records in the window" in result["failure_reason"]
    assert env.message.read_text() == f"monitoring Failed: {result['failure_reason']}"
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"monitoring Failed: {result['failure_reason']}"
    assert all(v == 0 for v in result["counts"].values())
    for name in ("statistics.json", "constraint_violations.json", "report.html", "cloudwatch_metrics.json",
                 "monitoring_result.json"):
        assert (env.out / name).is_file()
    cw = json.loads((env.out / "cloudwatch_metrics.json").read_text())
    names = {d["MetricName"] for d in cw["MetricData"]}
    assert "accuracy" not in names and {"captured_records", "monitoring_failed"} <= names
    assert not [p for p in env.out.iterdir() if p.name.startswith(".")]  # no staging left


def test_captures_but_no_labels(env):
    env.captures(binary_rows([1, 0, 1]))
    code, result = env.run()
    assert code == monitor.EXIT_FAILED and result["status"] == "Failed"
    assert "none of the 3 captured records" in result["failure_reason"]
    assert result["counts"]["captured"] == 3 and result["counts"]["unmatched_captures"] == 3
    assert result["counts"]["labelled"] == 0


def test_half_labelled_respects_min_label_coverage(env):
    env.captures(binary_rows([1, 0, 1, 0]))
    env.labels([("sts_0", 1), ("sts_1", 0)])
    code, result = env.run("--min-label-coverage", "0.8")
    assert code == monitor.EXIT_FAILED and result["status"] == "Failed"
    assert "label coverage 0.500 (2 of 4 captured records labelled) is below the minimum 0.8" in result["failure_reason"]
    assert result["violations"] == [] and result["metrics"]["accuracy"] == 1.0  # computed, not judged
    code, result = env.run("--min-label-coverage", "0.5")
    assert code == 0 and result["status"] == "Completed" and result["label_coverage"] == 0.5
    assert result["counts"] | {} == {
        "captured": 4, "labelled": 2, "matched": 2, "unmatched_captures": 2, "unmatched_labels": 0,
        "duplicate_captures": 0, "replaced_labels": 0, "malformed_capture_lines": 0, "malformed_label_lines": 0}


def test_labels_for_unknown_ids_are_counted_not_matched(env):
    env.captures(binary_rows([1, 0]))
    env.labels([("sts_0", 1), ("sts_1", 0), ("ghost-1", 1), ("ghost-2", 0)])
    _, result = env.run()
    assert result["counts"]["matched"] == 2 and result["counts"]["unmatched_labels"] == 2
    assert result["status"] == "Completed"


def test_a_newer_label_replaces_and_duplicate_captures_first_wins(env):
    env.captures(binary_rows([1, 1]) + [("sts_0", "0,0.1\n")])  # sts_0 captured twice: the first counts
    env.labels([("sts_0", 0), ("sts_1", 1)], name="a.jsonl")
    env.labels([("sts_0", 1)], name="b.jsonl")  # a later file corrects sts_0
    _, result = env.run()
    assert result["counts"]["duplicate_captures"] == 1 and result["counts"]["replaced_labels"] == 1
    assert "duplicate_labels" not in result["counts"]  # a relabel is a replacement, not a duplicate
    assert result["counts"]["captured"] == 2 and result["counts"]["labelled"] == 2
    assert result["metrics"]["accuracy"] == 1.0  # sts_0: predicted 1 (first capture), label 1 (latest)


def test_malformed_capture_and_label_lines_are_counted(env):
    bad_capture = [
        "not json at all\n",
        '{"captureData": {}}\n',  # no output, no metadata
        json.dumps(capture_record(event_id="e1", inference_id="x1", inference_time=H12, output="maybe,0.5\n")) + "\n",
        json.dumps(capture_record(event_id="e2", inference_id="x2", inference_time=H12, output="7,0.5\n")) + "\n",
        json.dumps(capture_record(event_id="e3", inference_id="x3", inference_time=H12, output="1,1.5\n")) + "\n",
        json.dumps(capture_record(event_id="e4", inference_id="x4", inference_time=H12, output="1,0.5\n0,0.2\n")) + "\n",
        "\n",  # blank lines are not records
    ]
    env.captures(binary_rows([1, 0]), extra_lines=bad_capture)
    env.labels([("sts_0", 1), ("sts_1", 0)], extra_lines=[
        "{broken\n",
        '{"groundTruthData": {"data": "maybe", "encoding": "CSV"}, "eventMetadata": {"eventId": "q"}, "eventVersion": "0"}\n',
        '{"groundTruthData": {"data": "2", "encoding": "CSV"}, "eventMetadata": {"eventId": "r"}, "eventVersion": "0"}\n',
        '{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {}, "eventVersion": "0"}\n',
    ])
    code, result = env.run()
    assert code == 0 and result["status"] == "Completed"
    assert result["counts"]["malformed_capture_lines"] == 6
    assert result["counts"]["malformed_label_lines"] == 4
    assert result["counts"]["matched"] == 2
    assert result["malformed_examples"]["capture"] and result["malformed_examples"]["ground_truth"]


def test_truncated_last_line_of_a_capture_file(env):
    path = env.captures(binary_rows([1, 0, 1]))
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the writer died mid-record
    env.labels([("sts_0", 1), ("sts_1", 0), ("sts_2", 1)])
    _, result = env.run()
    assert result["counts"]["captured"] == 2 and result["counts"]["malformed_capture_lines"] == 1
    assert result["counts"]["unmatched_labels"] == 1 and result["status"] == "Completed"


def test_event_id_is_the_key_when_there_is_no_inference_id(env):
    env.captures([(None, "1,0.9\n", "evt-a"), (None, "0,0.1\n", "evt-b"), ("inf-c", "1,0.8\n", "evt-c")])
    env.labels([("evt-a", 1), ("evt-b", 0), ("inf-c", 1), ("evt-c", 0)])
    _, result = env.run()
    assert result["counts"]["matched"] == 3 and result["counts"]["unmatched_labels"] == 1
    assert result["metrics"]["accuracy"] == 1.0


# ------------------------------------------------------------------ formats


def test_json_jsonlines_and_base64_outputs_parse_like_csv(env):
    env.captures([("j1", json.dumps({"predictions": [{"label": 1, "probability": 0.9}]}))],
                 output_type="application/json")
    env.captures([("j2", json.dumps({"probability": 0.2, "label": 0}) + "\n")], output_type="application/jsonlines")
    env.captures([("j3", json.dumps({"predictions": [{"label": 1, "probability": 0.7}, {"label": 0, "probability": 0.1}]}))],
                 output_type="application/json")  # two predictions in one record: unusable
    b64 = capture_record(event_id="e", inference_id="b1", inference_time=H12, output="", output_type="text/csv")
    b64["captureData"]["endpointOutput"].update(data=base64.b64encode(b"1,0.6\n").decode(), encoding="BASE64")
    write_jsonl(env.capture / ENDPOINT / "AllTraffic" / hour_prefix(H12) / "b64.jsonl", [b64])
    env.labels([("j1", 1), ("j2", 0), ("j3", 1), ("b1", 1)])
    _, result = env.run()
    assert result["counts"]["matched"] == 3 and result["counts"]["malformed_capture_lines"] == 1
    assert result["metrics"]["accuracy"] == 1.0
    stats = json.loads((env.out / "statistics.json").read_text())
    assert stats["binary_classification_metrics"]["auc"]["value"] == 1.0


def test_other_key_order_and_spacing_give_the_same_result(env, tmp_path):
    """The columnar fast path and the json.loads fallback agree."""
    rng = np.random.default_rng(1)
    preds, labels = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    env.captures(binary_rows(preds, prob=rng.random(300).round(3)))
    env.labels([(f"sts_{i}", int(v)) for i, v in enumerate(labels)])
    _, fast = env.run()

    other = Env(tmp_path / "other")
    write_constraints(other.baseline, accuracy=0.7, f1=0.7, auc=None)
    folder = other.capture / ENDPOINT / "AllTraffic" / hour_prefix(H12)
    folder.mkdir(parents=True)
    lines = []
    for line in next((env.capture / ENDPOINT / "AllTraffic" / hour_prefix(H12)).glob("*.jsonl")).read_text().splitlines():
        record = json.loads(line)
        reordered = {"eventVersion": record["eventVersion"], "eventMetadata": record["eventMetadata"],
                     "captureData": {"endpointOutput": record["captureData"]["endpointOutput"],
                                     "endpointInput": record["captureData"]["endpointInput"]}}
        lines.append(json.dumps(reordered, indent=None, separators=(", ", " : ")))
    (folder / "x.jsonl").write_text("\n".join(lines) + "\n")
    gt_folder = other.gt / hour_prefix(H12)
    gt_folder.mkdir(parents=True)
    (gt_folder / "x.jsonl").write_text("".join(
        json.dumps({"eventVersion": "0", "eventMetadata": {"eventId": f"sts_{i}"},
                    "groundTruthData": {"encoding": "CSV", "data": str(int(v))}}) + "\n" for i, v in enumerate(labels)))
    _, slow = other.run()
    assert slow["counts"] == fast["counts"] and slow["metrics"] == fast["metrics"]


def test_metrics_match_scikit_learn(env):
    rng = np.random.default_rng(5)
    n = 500
    y_true = rng.integers(0, 2, n)
    prob = np.clip(y_true * 0.35 + rng.random(n) * 0.65, 0, 1).round(4)
    y_pred = (prob >= 0.5).astype(int)
    env.captures(binary_rows(y_pred, prob=prob))
    env.labels([(f"sts_{i}", int(v)) for i, v in enumerate(y_true)])
    _, result = env.run()
    m = result["metrics"]
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["precision"] == pytest.approx(precision_score(y_true, y_pred))
    assert m["recall"] == pytest.approx(recall_score(y_true, y_pred))
    assert m["f1"] == pytest.approx(f1_score(y_true, y_pred))
    assert m["auc"] == pytest.approx(roc_auc_score(y_true, prob))
    stats = json.loads((env.out / "statistics.json").read_text())["binary_classification_metrics"]
    cm = stats["confusion_matrix"]
    assert cm["1"]["1"] == int(((y_true == 1) & (y_pred == 1)).sum())
    assert cm["0"]["1"] == int(((y_true == 0) & (y_pred == 1)).sum())
    assert sum(cm[a][p] for a in "01" for p in "01") == n
    assert 0 < stats["accuracy"]["standard_deviation"] < 0.05  # >= 200 records: from 5 subsamples
    roc = stats["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) <= model_metrics.CURVE_POINTS


def test_regression_end_to_end(env):
    (env.baseline / "constraints.json").write_text(json.dumps({"version": 0.0, "regression_constraints": {
        "mae": {"threshold": 0.5, "comparison_operator": "GreaterThanThreshold"},
        "rmse": {"threshold": 0.6, "comparison_operator": "GreaterThanThreshold"},
        "r2": {"threshold": 0.5, "comparison_operator": "LessThanThreshold"}}}))
    truth = [0.5, 1.0, 2.5, 3.0, 4.5, 5.0]
    env.captures([(f"r{i}", f"{t + 0.2}\n") for i, t in enumerate(truth[:3])])
    env.captures([(f"r{i}", json.dumps({"predictions": [{"score": t - 0.2}]})) for i, t in enumerate(truth) if i >= 3],
                 output_type="application/json")
    env.labels([(f"r{i}", t) for i, t in enumerate(truth)])
    code, result = env.run()
    assert code == 0 and result["problem_type"] == "Regression" and result["status"] == "Completed"
    assert result["metrics"]["mae"] == pytest.approx(0.2) and result["metrics"]["rmse"] == pytest.approx(0.2)
    stats = json.loads((env.out / "statistics.json").read_text())
    assert set(stats["regression_metrics"]) == {"mae", "mse", "rmse", "r2"}
    assert stats["regression_metrics"]["mae"]["standard_deviation"] == "NaN"  # < 200 records

    env.labels([(f"r{i}", t + 2.0) for i, t in enumerate(truth)], name="zz-late.jsonl")  # relabel: far off
    _, result = env.run()
    assert result["status"] == "CompletedWithViolations"
    assert {v["metric_name"] for v in result["violations"]} == {"mae", "rmse", "r2"}
    assert result["counts"]["replaced_labels"] == 6


def test_single_class_window_has_undefined_auc_and_does_not_judge_it(env):
    write_constraints(env.baseline, accuracy=0.5, f1=None, auc=0.7)
    env.captures(binary_rows([1, 1, 1]))
    env.labels([("sts_0", 1), ("sts_1", 1), ("sts_2", 1)])
    _, result = env.run()
    assert result["status"] == "Completed"
    auc_check = next(c for c in result["checks"] if c["metric_name"] == "auc")
    assert auc_check["status"] == "NotEvaluated"
    stats = json.loads((env.out / "statistics.json").read_text())
    assert stats["binary_classification_metrics"]["auc"]["value"] == "NaN"


# ------------------------------------------------------------------ the outputs follow their schemas


def _outputs(env) -> dict[str, dict]:
    return {name: json.loads((env.out / name).read_text())
            for name in (names.STATISTICS_FILE, names.VIOLATIONS_FILE, names.RESULT_FILE)}


def test_outputs_of_every_status_follow_their_json_schemas(env, tmp_path):
    """statistics.json, constraint_violations.json and monitoring_result.json as the monitor wrote
    them, for a Failed, a Completed and a CompletedWithViolations window (stscontracts/schemas/)."""
    seen = {}
    _, failed = env.run()  # nothing captured
    seen[failed["status"]] = _outputs(env)
    env.captures(binary_rows([1, 0, 1, 1]))
    env.labels([("sts_0", 1), ("sts_1", 0), ("sts_2", 1), ("sts_3", 1)])
    _, clean = env.run()
    seen[clean["status"]] = _outputs(env)
    env.labels([("sts_0", 0), ("sts_1", 1), ("sts_2", 0), ("sts_3", 0)], name="zz-noisy.jsonl")
    _, noisy = env.run()
    seen[noisy["status"]] = _outputs(env)
    assert set(seen) == set(names.MONITOR_STATUSES)
    for status, outputs in seen.items():
        for name, document in outputs.items():
            assert documents.problems(document, documents.kind_of_file(name)) == [], (status, name)


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.update(status="Done"), "status: 'Done' is not one of"),
    (lambda r: r.update(status="Failed", failure_reason=""), "failure_reason: '' should be non-empty"),
    (lambda r: r["window"].update(end="13:00"), "window.end: '13:00' is not a UTC time"),
    (lambda r: r["counts"].update(matched=-1), "counts.matched: -1 is less than the minimum of 0"),
    (lambda r: r.pop("violations"), "(the document): 'violations' is a required property"),
])
def test_a_broken_monitoring_result_is_refused(env, change, problem):
    env.captures(binary_rows([1, 0]))
    env.labels([("sts_0", 1), ("sts_1", 0)])
    _, result = env.run()
    assert documents.problems(result, documents.MONITORING_RESULT) == []
    change(result)
    assert any(p.startswith(problem) for p in documents.problems(result, documents.MONITORING_RESULT))


# ------------------------------------------------------------------ arguments and baseline


@pytest.mark.parametrize(
    "change, args, message",
    [
        (None, ["--window-hours", "0"], "--window-hours"),
        (None, ["--execution-time", "yesterday"], "--execution-time 'yesterday' is not an ISO-8601 time"),
        (None, ["--min-label-coverage", "1.5"], "between 0 and 1"),
        (None, ["--publish-cloudwatch", "maybe"], "expected true or false"),
        ("missing", [], "no constraints.json in the baseline folder"),
        ("{not json", [], "constraints.json line 1 column 2: not valid JSON"),
        ('{"binary_classification_constraints": {"accuracy": {"threshold": 0.8, "comparison_operator": "Below"}}}',
         [], "comparison_operator 'Below' is not one of"),
        ('{"binary_classification_constraints": {"weighted_f9": {"threshold": 0.8, "comparison_operator": "LessThanThreshold"}}}',
         [], "weighted_f9: unknown metric"),
        ('{"binary_classification_constraints": {"accuracy": {"threshold": "high", "comparison_operator": "LessThanThreshold"}}}',
         [], "threshold 'high' is not a number"),
        ('{"version": 0.0}', [], "expected exactly one of binary_classification_constraints or regression_constraints"),
        ('{"regression_constraints": {}}', ["--problem-type", "BinaryClassification"], "needs 'binary_classification_constraints'"),
    ],
)
def test_unusable_arguments_or_baseline_exit_2_and_write_nothing(env, capsys, change, args, message):
    if change == "missing":
        (env.baseline / "constraints.json").unlink()
    elif change:
        (env.baseline / "constraints.json").write_text(change)
    code, _ = env.run(*args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not env.out.exists()


def test_baseline_statistics_are_shown_next_to_the_window(env):
    (env.baseline / "statistics.json").write_text(json.dumps({"version": 0.0, "dataset": {"item_count": 9},
        "binary_classification_metrics": {"accuracy": {"value": 0.777, "standard_deviation": 0.01}}}))
    env.captures(binary_rows([1, 0]))
    env.labels([("sts_0", 1), ("sts_1", 0)])
    env.run()
    html = (env.out / "report.html").read_text()
    assert "0.7770" in html and html.count("<svg") >= 3


# ------------------------------------------------------------------ CloudWatch


def test_publish_cloudwatch_sends_every_data_point_with_dimensions():
    from botocore.stub import Stubber
    import boto3

    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    dims = [{"Name": "Endpoint", "Value": "ep"}, {"Name": "MonitoringSchedule", "Value": "sch"}]
    payload = {"Namespace": "stsmodelmonitor", "MetricData": [
        {"MetricName": f"m{i}", "Timestamp": "2026-11-27T13:00:00Z", "Dimensions": dims, "Value": float(i), "Unit": "None"}
        for i in range(25)]}
    stamp = datetime(2026, 11, 27, 13, tzinfo=timezone.utc)
    with Stubber(client) as stub:
        for lo, hi in ((0, 20), (20, 25)):
            stub.add_response("put_metric_data", {}, {"Namespace": "stsmodelmonitor", "MetricData": [
                dict(d, Timestamp=stamp) for d in payload["MetricData"][lo:hi]]})
        assert monitor_outputs.publish_cloudwatch(payload, client) == 25
        stub.assert_no_pending_responses()


def test_main_publishes_when_asked_and_reports_a_failure_after_writing_outputs(env, capsys, monkeypatch):
    from botocore.stub import Stubber
    import boto3

    env.captures(binary_rows([1, 0]))
    env.labels([("sts_0", 1), ("sts_1", 0)])
    client = boto3.client("cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    made = []
    monkeypatch.setattr(boto3, "client", lambda service, **kw: made.append((service, kw)) or client)
    with Stubber(client) as stub:
        stub.add_response("put_metric_data", {})  # 20 data points per call: 6 counts + 17 metrics = 2 calls
        stub.add_response("put_metric_data", {})
        code, result = env.run("--publish-cloudwatch", "true", "--region", "eu-west-1")
        stub.assert_no_pending_responses()
    assert code == 0 and "published 23 metric data points" in capsys.readouterr().out
    assert made == [("cloudwatch", {"region_name": "eu-west-1"})]  # the region given, not the container's default
    with Stubber(client) as stub:
        stub.add_client_error("put_metric_data", "AccessDenied", "not allowed")
        code = monitor.main(["--capture-dir", str(env.capture), "--ground-truth-dir", str(env.gt), "--baseline-dir",
                             str(env.baseline), "--output-dir", str(env.out), "--execution-time", EXEC,
                             "--endpoint-name", ENDPOINT, "--schedule-name", "s", "--publish-cloudwatch", "true",
                             "--region", "eu-west-1", "--exit-message-file", str(env.message)])
    assert code == 1
    assert "publishing to CloudWatch namespace stsmodelmonitor failed: ClientError" in capsys.readouterr().err
    assert (env.out / "monitoring_result.json").is_file()


def test_publish_requires_the_dimensions(env, capsys):
    code, _ = env.run("--publish-cloudwatch", "true", "--endpoint-name", "", "--region", "us-east-1")
    assert code == 2 and "needs --endpoint-name and --schedule-name" in capsys.readouterr().err


def test_publish_requires_an_explicit_region(env, capsys):
    code, _ = env.run("--publish-cloudwatch", "true")
    assert code == 2 and "--region is required" in capsys.readouterr().err
    assert not env.out.exists()


# ------------------------------------------------------------------ as the container runs it


def test_runs_as_a_standalone_script(env, repo_root, subprocess_env, tmp_path):
    """The container runs `python monitor.py` from a folder of the scripts alone (and the contracts package)."""
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    for name in monitor.PROGRAM_FILES:
        (code_dir / name).write_bytes((repo_root / "processing_scripts" / name).read_bytes())
    for name, path in stscontracts.package_files():
        (code_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (code_dir / name).write_bytes(path.read_bytes())
    env.captures(binary_rows([1, 0]))
    env.labels([("sts_0", 1), ("sts_1", 1)])
    proc = subprocess.run(
        [sys.executable, str(code_dir / "monitor.py"), "--capture-dir", str(env.capture), "--ground-truth-dir",
         str(env.gt), "--baseline-dir", str(env.baseline), "--output-dir", str(env.out), "--execution-time", EXEC],
        capture_output=True, text=True, env=subprocess_env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("CompletedWithViolations: window 2026-11-27T12:00:00Z .. 2026-11-27T13:00:00Z")
    assert "violation: Metric accuracy with 0.5 was LessThanThreshold 0.7" in proc.stdout


def test_the_program_imports_neither_pandas_nor_scipy_nor_scikit_learn(repo_root, subprocess_env):
    """Their imports cost 1.3 s of the 6 s a million-record window may take (docs/monitoring.md):
    the monitor's modules use the standard library and numpy only."""
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import monitor; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'scipy', 'sklearn'}))")
    proc = subprocess.run([sys.executable, "-c", probe, str(repo_root / "processing_scripts")],
                          capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
