"""The monitoring job's data-quality half (processing_scripts/monitor_data_quality.py): label-free.

A data-quality baseline is built from the hand-written pairs (the same
functions data_quality_baseline.py uses); windows of captured requests and
answers, with no label at all, are checked against it by ``monitor.main``,
as the monitoring pipeline runs it. The outputs are validated against the
contracts' schemas.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from processing_scripts import data_quality, monitor, monitor_data_quality, monitor_outputs, pair_features
from processing_scripts import performance_estimation
from stscontracts import documents, names
from stscontracts.names import hour_prefix
from stsmon.monitoring.records import capture_record, write_jsonl
from stsmon.monitoring.synthetic import write_constraints

from pairs_fixture import BASES

H = datetime(2033, 3, 14, 9, tzinfo=timezone.utc)
EXEC = "2033-03-14T10:05:00Z"  # default window: [09:00, 10:00)
ENDPOINT = "sts-endpoint"


def _pairs() -> list[tuple[str, str, int]]:
    """(sentence1, sentence2, label) of the fixture: each base with its paraphrase (1) and its contradiction (0)."""
    return [(a, p, 1) for a, p, _ in BASES] + [(a, c, 0) for a, _, c in BASES]


def _probability(label: int, i: int) -> float:
    """A calibrated-looking, label-consistent probability (0.80-0.95 for 1, 0.05-0.20 for 0)."""
    spread = 0.05 + 0.15 * ((i * 7) % 10) / 9
    return round(1 - spread if label else spread, 6)


def _baseline(folder: Path, *, threshold: float = 0.1, method: str = "Robust", copies: int = 20) -> Path:
    """A data-quality baseline of the fixture pairs repeated ``copies`` times (about 600 rows)."""
    rows = _pairs() * copies
    pairs = [(a, b) for a, b, _ in rows]
    labels = np.array([y for _, _, y in rows], dtype=float)
    probability = np.array([_probability(int(y), i) for i, y in enumerate(labels)])
    predicted = (probability >= 0.5).astype(float)
    vocabulary = sorted({w for a, b in pairs for w in pair_features.tokens(a) + pair_features.tokens(b)})
    columns = data_quality.feature_columns(pairs, names.BINARY_CLASSIFICATION, vocabulary=set(vocabulary),
                                           probability=probability, label=predicted)
    statistics = data_quality.dataset_statistics(columns, len(pairs))
    constraints = data_quality.suggest_constraints(statistics, comparison_threshold=threshold, comparison_method=method)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / names.STATISTICS_FILE).write_text(json.dumps(statistics))
    (folder / names.CONSTRAINTS_FILE).write_text(json.dumps(constraints))
    (folder / names.VOCABULARY_FILE).write_text("".join(f"{w}\n" for w in vocabulary))
    (folder / names.CALIBRATION_FILE).write_text(json.dumps(performance_estimation.calibration(probability, labels)))
    return folder


def _csv(a: str, b: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([a, b])
    return out.getvalue()


class Window:
    def __init__(self, root: Path) -> None:
        self.capture = root / "capture"
        self.gt = root / "gt"
        self.baseline = root / "baseline"
        self.dq = root / "dq-baseline"
        self.out = root / "out"
        self.message = root / "message"
        self.gt.mkdir(parents=True)
        write_constraints(self.baseline, accuracy=0.7, f1=0.7, auc=None, precision=0.7, recall=0.7)
        self._n = 0

    def traffic(self, rows, *, probability=None, hour=H, output_type="text/csv") -> Path:
        """rows: (sentence1, sentence2, predicted label); one capture file in ``hour``, no labels."""
        records = []
        for i, (a, b, label) in enumerate(rows):
            p = probability[i] if probability is not None else _probability(label, i)
            records.append(capture_record(
                event_id=f"evt-{self._n}-{i}", inference_id=f"id-{self._n}-{i}",
                inference_time=hour + timedelta(seconds=i % 3600), output=f"{label},{p}\n",
                output_type=output_type, input_data=_csv(a, b), input_type="text/csv"))
        self._n += 1
        path = self.capture / ENDPOINT / "AllTraffic" / hour_prefix(hour) / f"capture-{self._n:04d}.jsonl"
        write_jsonl(path, records)
        return path

    def run(self, *args: str) -> tuple[int, dict]:
        code = monitor.main([
            "--capture-dir", str(self.capture), "--ground-truth-dir", str(self.gt),
            "--baseline-dir", str(self.baseline), "--data-quality-baseline-dir", str(self.dq),
            "--output-dir", str(self.out), "--exit-message-file", str(self.message),
            "--execution-time", EXEC, "--endpoint-name", ENDPOINT, "--schedule-name", "sts-model-quality", *args])
        path = self.out / names.RESULT_FILE
        return code, (json.loads(path.read_text()) if path.is_file() else {})

    def dq_file(self, name: str) -> dict:
        return json.loads((self.out / names.DATA_QUALITY_DIR / name).read_text())


@pytest.fixture(scope="module")
def dq_folder(tmp_path_factory) -> Path:
    return _baseline(tmp_path_factory.mktemp("dq") / "dq-baseline")


@pytest.fixture
def window(tmp_path, dq_folder) -> Window:
    w = Window(tmp_path)
    w.dq = dq_folder
    return w


def _in_distribution(n: int = 240) -> list[tuple[str, str, int]]:
    pairs = _pairs()
    return [pairs[(i * 11) % len(pairs)] for i in range(n)]


def _mismatched(n: int = 240) -> list[tuple[str, str, int]]:
    """Sentence 1 of one base with sentence 2 of another: what a broken client sends."""
    pairs = _pairs()
    return [(pairs[i % len(pairs)][0], pairs[(i + 7) % len(pairs)][1], 0) for i in range(n)]


def test_a_label_free_in_distribution_hour_is_clean(window):
    window.traffic(_in_distribution())
    code, result = window.run()
    # No labels: the model-quality half cannot judge; the data-quality half does, so the run is not Failed.
    assert code == 0 and result["status"] == names.MONITOR_COMPLETED and result["failure_reason"] == ""
    assert result["model_quality"]["status"] == "NotEvaluated"
    assert "ground-truth label" in result["model_quality"]["reason"]
    dq = result["data_quality"]
    assert dq["status"] == names.MONITOR_COMPLETED, dq["violations"]
    assert dq["records"] == 240 and dq["sampled"] is False
    assert dq["violations"] == [] and window.dq_file(names.VIOLATIONS_FILE) == {"violations": []}
    assert {f["feature"] for f in dq["features"]} == {n for n, _ in pair_features.features(names.BINARY_CLASSIFICATION)}
    assert all(f["status"] == "OK" for f in dq["features"])
    estimated = dq["estimated"]
    assert set(estimated["metrics"]) == set(names.ESTIMATED_METRICS) and estimated["violations"] == []
    accuracy = estimated["metrics"]["accuracy"]
    assert accuracy["lower"] <= accuracy["value"] <= accuracy["upper"]
    assert accuracy["threshold"] == 0.7 and accuracy["status"] == "OK"


def test_a_label_free_shifted_hour_violates_drift_in_model_monitors_form(window):
    window.traffic(_mismatched())
    code, result = window.run()
    assert code == 0 and result["status"] == names.MONITOR_VIOLATIONS
    assert result["violations"] == []  # the model-quality violations: none judged without labels
    dq = result["data_quality"]
    assert dq["status"] == names.MONITOR_VIOLATIONS
    violations = window.dq_file(names.VIOLATIONS_FILE)["violations"]
    assert violations == dq["violations"]
    drifted = {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
    assert {"word1_f1", "char3_jaccard", "rouge_l_f1"} <= drifted
    assert all(v["description"].startswith("Baseline drift distance: ") for v in violations
               if v["constraint_check_type"] == "baseline_drift_check")
    by_name = {f["feature"]: f for f in dq["features"]}
    assert by_name["word1_f1"]["distance"] > 0.1 and by_name["word1_f1"]["psi"] > 0.25
    assert by_name["sentence1_tokens"]["status"] == "OK"  # the sentences themselves look as always


def test_the_outputs_follow_the_contracts_schemas(window):
    window.traffic(_mismatched())
    window.run()
    documents.validate(window.dq_file(names.STATISTICS_FILE), documents.DATA_QUALITY_STATISTICS)
    documents.validate(window.dq_file(names.VIOLATIONS_FILE), documents.DATA_QUALITY_VIOLATIONS)
    documents.validate(json.loads((window.out / names.RESULT_FILE).read_text()), documents.MONITORING_RESULT)
    statistics = window.dq_file(names.STATISTICS_FILE)
    assert statistics["dataset"]["item_count"] == 240
    # The model-quality files are where they were, beside the data-quality folder.
    assert {p.name for p in window.out.iterdir()} == {
        names.STATISTICS_FILE, names.VIOLATIONS_FILE, names.REPORT_FILE, names.CLOUDWATCH_FILE, names.RESULT_FILE,
        names.DATA_QUALITY_DIR}


def test_drift_and_estimates_are_published_with_model_monitors_names_without_labels(window):
    window.traffic(_mismatched())
    _, result = window.run()
    payload = json.loads((window.out / names.CLOUDWATCH_FILE).read_text())
    values = {d["MetricName"]: d["Value"] for d in payload["MetricData"]}
    assert values[names.METRIC_MONITORING_FAILED] == 0  # judged, on data quality alone
    assert "accuracy" not in values  # no realized metric without labels
    for feature in result["data_quality"]["features"]:
        assert values[f"feature_baseline_drift_{feature['feature']}"] == pytest.approx(feature["distance"])
    assert values[names.METRIC_DATA_QUALITY_VIOLATIONS] == len(result["data_quality"]["violations"])
    assert values[names.METRIC_DRIFT_VIOLATIONS] >= 3
    for metric in names.ESTIMATED_METRICS:
        estimate = result["data_quality"]["estimated"]["metrics"][metric]
        assert values[f"estimated_{metric}"] == estimate["value"]
        assert values[f"estimated_{metric}_lower"] == estimate["lower"]
        assert values[f"estimated_{metric}_upper"] == estimate["upper"]
    dims = {tuple((d["Name"], d["Value"]) for d in point["Dimensions"]) for point in payload["MetricData"]}
    assert dims == {(("Endpoint", ENDPOINT), ("MonitoringSchedule", "sts-model-quality"))}


def test_an_estimated_drop_below_the_model_quality_constraint_is_a_violation(window):
    # Unsure answers (probabilities near 0.5): CBPE expects about 55 % right, below the 0.7 constraint.
    rows = _in_distribution(200)
    window.traffic(rows, probability=[0.55 if label else 0.45 for _, _, label in rows])
    _, result = window.run()
    estimated = result["data_quality"]["estimated"]
    assert estimated["metrics"]["accuracy"]["value"] == pytest.approx(0.55, abs=1e-6)
    assert estimated["metrics"]["accuracy"]["status"] == "Violation"
    assert [v["metric_name"] for v in estimated["violations"]][:1] == ["estimated_accuracy"]
    assert estimated["violations"][0]["constraint_check_type"] == "LessThanThreshold"
    assert result["data_quality"]["status"] == names.MONITOR_VIOLATIONS


def test_estimates_use_every_captured_prediction_not_the_sample(window):
    window.traffic(_in_distribution(400))
    _, result = window.run("--data-quality-sample", "100")
    dq = result["data_quality"]
    assert dq["records"] == 100 and dq["sampled"] is True
    assert dq["estimated"]["records"] == 400
    assert window.dq_file(names.STATISTICS_FILE)["dataset"]["item_count"] == 100


def test_labels_change_nothing_in_the_data_quality_half(window):
    window.traffic(_mismatched())
    _, without = window.run()
    labels = window.gt / hour_prefix(H) / "labels.jsonl"
    from stscontracts.records import ground_truth_record

    write_jsonl(labels, [ground_truth_record(f"id-0-{i}", 0) for i in range(240)])
    code, labelled = window.run()
    assert code == 0 and labelled["counts"]["matched"] == 240
    assert labelled["data_quality"] == without["data_quality"]


def test_requests_without_one_readable_pair_break_completeness(window):
    rows = _in_distribution(200)
    path = window.traffic(rows)
    lines = path.read_text().splitlines()
    broken = []
    for i, line in enumerate(lines):
        record = json.loads(line)
        if i % 10 == 0:  # one in ten: a request the monitor cannot read as one pair
            record["captureData"]["endpointInput"]["data"] = "only one column\n"
        broken.append(json.dumps(record))
    path.write_text("\n".join(broken) + "\n")
    _, result = window.run()
    completeness = {v["feature_name"] for v in result["data_quality"]["violations"]
                    if v["constraint_check_type"] == "completeness_check"}
    assert completeness == {n for n, _ in pair_features.PAIR_FEATURES}
    by_name = {f["feature"]: f for f in result["data_quality"]["features"]}
    assert by_name["word1_f1"]["completeness"] == pytest.approx(0.9)
    assert by_name["probability"]["completeness"] == 1.0


def test_without_a_data_quality_baseline_the_check_is_not_evaluated(window, tmp_path):
    window.dq = tmp_path / "nowhere"
    window.traffic(_in_distribution(50))
    _, result = window.run()
    assert result["data_quality"]["status"] == monitor_data_quality.DQ_NOT_EVALUATED
    assert "no data-quality baseline" in result["data_quality"]["reason"]
    assert not (window.out / names.DATA_QUALITY_DIR).exists()
    documents.validate(result, documents.MONITORING_RESULT)
    # Without it, a window with no labels fails as it always did.
    assert result["status"] == names.MONITOR_FAILED and result["model_quality"]["status"] == names.MONITOR_FAILED
    # A package registered before the data-quality baseline: its model-quality folder only.
    window.dq = window.baseline
    code, result = window.run()
    assert result["data_quality"]["status"] == monitor_data_quality.DQ_NOT_EVALUATED
    assert "model-quality constraints file" in result["data_quality"]["reason"]
    assert code == monitor.EXIT_FAILED


def test_with_labels_either_checks_violations_make_the_run_violate(window):
    window.traffic(_mismatched())
    from stscontracts.records import ground_truth_record

    # Labels that agree with every prediction (all 0): accuracy 1, the inputs still drifted.
    write_constraints(window.baseline, accuracy=0.7, f1=0.0, auc=None)
    write_jsonl(window.gt / hour_prefix(H) / "labels.jsonl", [ground_truth_record(f"id-0-{i}", 0) for i in range(240)])
    code, result = window.run()
    assert code == 0 and result["model_quality"] == {"status": names.MONITOR_COMPLETED, "reason": ""}
    assert result["violations"] == [] and result["data_quality"]["status"] == names.MONITOR_VIOLATIONS
    assert result["status"] == names.MONITOR_VIOLATIONS


def test_partial_labels_below_the_coverage_still_fail_the_run(window):
    window.traffic(_in_distribution(100))
    from stscontracts.records import ground_truth_record

    write_jsonl(window.gt / hour_prefix(H) / "labels.jsonl", [ground_truth_record(f"id-0-{i}", 1) for i in range(10)])
    code, result = window.run("--min-label-coverage", "0.5")
    assert code == monitor.EXIT_FAILED and result["status"] == names.MONITOR_FAILED
    assert "label coverage 0.100" in result["failure_reason"]
    assert result["data_quality"]["status"] == names.MONITOR_COMPLETED


def test_an_unusable_data_quality_baseline_exits_2_and_writes_nothing(window, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / names.STATISTICS_FILE).write_text(json.dumps({"features": []}))
    (broken / names.CONSTRAINTS_FILE).write_text(json.dumps({"features": [{"name": "x", "inferred_type": "Text"}]}))
    window.dq = broken
    window.traffic(_in_distribution(20))
    code, result = window.run()
    assert code == 2 and result == {} and not window.out.exists()
    assert "inferred_type 'Text'" in capsys.readouterr().err


def test_an_empty_window_fails_the_data_quality_half_with_its_reason(window):
    code, result = window.run()
    assert code == monitor.EXIT_FAILED
    assert result["data_quality"]["status"] == names.MONITOR_FAILED
    assert "no capture records" in result["data_quality"]["reason"]
    values = {d["MetricName"] for d in json.loads((window.out / names.CLOUDWATCH_FILE).read_text())["MetricData"]}
    assert not any(v.startswith(("feature_baseline_drift_", "estimated_")) for v in values)


# ------------------------------------------------------------------ the sample


def _lines(tmp_path: Path, files: int, per_file: int) -> list[Path]:
    paths = []
    for f in range(files):
        path = tmp_path / f"f{f}.jsonl"
        path.write_text("".join(json.dumps({"n": f * per_file + i, "pad": "x" * (i % 50)}) + "\n"
                                for i in range(per_file)))
        paths.append(path)
    return paths


def test_small_windows_are_read_whole_and_thinned_evenly(tmp_path):
    files = _lines(tmp_path, 3, 100)
    lines, sampled = monitor_data_quality.sample_lines(files, 1000)
    assert (len(lines), sampled) == (300, False)
    lines, sampled = monitor_data_quality.sample_lines(files, 30)
    assert sampled and [json.loads(x)["n"] for x in lines] == list(range(0, 300, 10))


def test_large_windows_are_read_at_evenly_spaced_offsets(tmp_path, monkeypatch):
    monkeypatch.setattr(monitor_data_quality, "ALL_BYTES", 0)
    files = _lines(tmp_path, 4, 2000)
    lines, sampled = monitor_data_quality.sample_lines(files, 400)
    numbers = [json.loads(x)["n"] for x in lines]  # every line read is a whole record
    assert sampled and len(numbers) == len(set(numbers)) and 390 <= len(numbers) <= 400
    assert numbers == sorted(numbers)
    gaps = np.diff(numbers)
    assert gaps.min() >= 10 and gaps.max() <= 30  # evenly spread over all four files (8000 / 400 = 20)
    assert monitor_data_quality.sample_lines(files, 400) == (lines, True)  # deterministic


def test_the_monitor_program_files_include_the_data_quality_modules():
    assert {"monitor_data_quality.py", "data_quality.py", "pair_features.py",
            "performance_estimation.py"} <= set(monitor.PROGRAM_FILES)
    assert monitor_outputs.data_quality_metrics({"status": monitor_data_quality.DQ_NOT_EVALUATED}) == []


def test_regression_watches_the_score_and_says_why_it_estimates_nothing(tmp_path):
    rows = _pairs() * 10
    pairs = [(a, b) for a, b, _ in rows]
    scores = np.array([4.5 if y else 1.0 for *_, y in rows]) + np.linspace(0, 0.4, len(rows))
    columns = data_quality.feature_columns(pairs, names.REGRESSION, score=np.round(scores, 6))
    statistics = data_quality.dataset_statistics(columns, len(pairs))
    folder = tmp_path / "dq"
    folder.mkdir()
    (folder / names.STATISTICS_FILE).write_text(json.dumps(statistics))
    (folder / names.CONSTRAINTS_FILE).write_text(json.dumps(data_quality.suggest_constraints(statistics, comparison_threshold=0.1)))
    window = Window(tmp_path / "w")
    window.dq = folder
    (window.baseline / names.CONSTRAINTS_FILE).write_text(json.dumps(
        {"version": 0.0, "regression_constraints": {"mae": {"threshold": 1.0, "comparison_operator": "GreaterThanThreshold"}}}))
    captured = _in_distribution(100)
    window.traffic([(a, b, 0) for a, b, _ in captured])
    path = next(window.capture.rglob("*.jsonl"))  # answers as the regressor gives them: one score
    path.write_text("".join(json.dumps(_as_score(json.loads(line))) + "\n" for line in path.read_text().splitlines()))
    code, result = window.run()
    dq = result["data_quality"]
    assert code == 0 and dq["status"] in (names.MONITOR_COMPLETED, names.MONITOR_VIOLATIONS)
    assert {f["feature"] for f in dq["features"]} == set(names.data_quality_features(names.REGRESSION))
    assert next(f for f in dq["features"] if f["feature"] == "score")["completeness"] == 1.0
    assert dq["estimated"]["metrics"] == {} and "not estimated for Regression" in dq["estimated"]["reason"]


def _as_score(record: dict) -> dict:
    record["captureData"]["endpointOutput"]["data"] = "3.2\n"
    return record


def test_lines_that_are_not_capture_records_are_not_rows(window):
    path = window.traffic(_in_distribution(100))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"captureData": {"endpointInput": {"observedContentType": "text/csv", "da')  # truncated last line
    _, result = window.run()
    assert result["counts"]["malformed_capture_lines"] == 1
    dq = result["data_quality"]
    assert dq["records"] == 100 and dq["status"] == names.MONITOR_COMPLETED, dq["violations"]

SAMPLE_IN_CHILD_PROBE = r"""
import json, sys
from pathlib import Path
import numpy as np
from processing_scripts import monitor_data_quality as m
files = sorted(Path(sys.argv[1]).rglob("*.jsonl"))
baseline = m.DataQualityBaseline(Path("."), {}, {}, frozenset({"the", "witness"}), None)
m.ALL_BYTES = 0  # as for a window of more than ALL_BYTES: read at offsets, in a forked child
started = m.start_sample(files, baseline, "BinaryClassification", 150)
child = started.result()
here = m.sample_columns(files, "BinaryClassification", baseline.vocabulary, 150)
same = (child.lines, child.sampled) == (here.lines, here.sampled) and [(n, k) for n, k, _ in child.columns] == [
    (n, k) for n, k, _ in here.columns] and all(np.array_equal(a, b, equal_nan=True)
                                               for (_, _, a), (_, _, b) in zip(child.columns, here.columns))
m.ALL_BYTES = 1 << 40
print(json.dumps({"in_child": type(started).__name__, "same": same, "lines": child.lines,
                  "small_window": type(m.start_sample(files, baseline, "BinaryClassification", 150)).__name__,
                  "no_baseline": m.start_sample(files, None, "BinaryClassification", 150).result()}))
"""


def test_a_large_windows_sample_is_computed_in_a_forked_child_with_the_same_result(tmp_path, subprocess_env):
    """Over ALL_BYTES of capture, the sample's features come from a forked child (on the other
    core while the job parses the window) and equal those computed in the job's process; a small
    window, and a run without a data-quality baseline, start no child. (In its own interpreter:
    the test process has threads, where the job never forks.)"""
    import subprocess
    import sys

    from stsmon.monitoring.synthetic import write_window

    write_window(tmp_path / "capture", tmp_path / "gt", H, 600, files=3)
    out = subprocess.run([sys.executable, "-c", SAMPLE_IN_CHILD_PROBE, str(tmp_path / "capture")], capture_output=True,
                         text=True, env=subprocess_env, check=True).stdout
    assert json.loads(out) == {"in_child": "_InChild", "same": True, "lines": 150, "small_window": "_Done",
                               "no_baseline": None}
