"""The step scripts chained like the SageMaker pipeline, in /opt/ml-like folders, for both problem types."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tarfile
from datetime import datetime, timezone

import numpy as np
import pytest

import steputil
import stscontracts
from stscontracts import documents, names

WHEN = datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc)

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "auc")
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "pearson")


def rows_of(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def check_metric_block(block, metrics):
    for name in metrics:
        assert set(block[name]) == {"value", "standard_deviation"}
        assert isinstance(block[name]["value"], float)
        assert block[name]["standard_deviation"] is None or block[name]["standard_deviation"] >= 0


def test_binary_evaluation_json_is_in_model_metrics_form(binary_run):
    report = json.loads((binary_run.evaluation / names.EVALUATION_FILE).read_text())
    test_rows = rows_of(binary_run.test / names.TEST_FILE)
    assert report["problem_type"] == names.BINARY_CLASSIFICATION
    assert report["item_count"] == len(test_rows) == 8
    block = report[names.METRICS_KEY[names.BINARY_CLASSIFICATION]]
    check_metric_block(block, CLASSIFICATION_METRICS)
    assert all(0.0 <= block[m]["value"] <= 1.0 for m in CLASSIFICATION_METRICS)
    assert block["accuracy"]["value"] >= 0.75  # the fixture is learnable (seeded, deterministic)
    cm = block["confusion_matrix"]
    assert sum(cm[a][p] for a in "01" for p in "01") == len(test_rows)
    # The quality gate's JsonGet path resolves to a number.
    node = report
    for key in names.gate_json_path(names.BINARY_CLASSIFICATION, "accuracy").split("."):
        node = node[key]
    assert node == block["accuracy"]["value"]


def test_binary_baseline_files_are_in_model_monitor_form(binary_run):
    validation = rows_of(binary_run.validation / names.VALIDATION_FILE)
    baseline = rows_of(binary_run.baseline / names.BASELINE_CSV)
    assert baseline[0] == ["prediction", "probability", "label"]
    assert len(baseline) - 1 == len(validation)
    for (pred, prob, label), (true_label, _, _) in zip(baseline[1:], validation):
        assert label == true_label
        assert 0.0 <= float(prob) <= 1.0
        assert int(pred) == int(float(prob) >= 0.5)
    stats = json.loads((binary_run.baseline / names.STATISTICS_FILE).read_text())
    assert stats["version"] == 0.0
    assert stats["dataset"]["item_count"] == len(validation)
    datetime.strptime(stats["dataset"]["evaluation_time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    block = stats["binary_classification_metrics"]
    check_metric_block(block, CLASSIFICATION_METRICS)
    constraints = json.loads((binary_run.baseline / names.CONSTRAINTS_FILE).read_text())
    assert constraints["version"] == 0.0
    checks = constraints[names.CONSTRAINTS_KEY[names.BINARY_CLASSIFICATION]]
    assert set(checks) == set(CLASSIFICATION_METRICS)
    for name, check in checks.items():
        assert check["comparison_operator"] == "LessThanThreshold"
        value, sd = block[name]["value"], block[name]["standard_deviation"]
        assert check["threshold"] == pytest.approx(max(value - 3 * sd, 0.0), abs=1e-6)


def test_model_archive_is_a_self_contained_serving_package(binary_run):
    with tarfile.open(binary_run.packed / names.MODEL_ARCHIVE) as tar:
        members = set(tar.getnames())
    assert members >= {names.MODEL_FILE, names.MODEL_INFO_FILE,
                       *(f"{names.MODEL_CODE_DIR}/{f}" for f in names.MODEL_CODE_FILES),
                       *(f"{names.MODEL_CODE_DIR}/{f}" for f, _ in stscontracts.package_files())}
    info = json.loads((binary_run.model / names.MODEL_INFO_FILE).read_text())
    assert info["problem_type"] == names.BINARY_CLASSIFICATION
    assert info["labels"] == [0, 1]
    assert info["row_counts"] == {"train": 32, "validation": 8}
    assert info["versions"]["scikit-learn"].startswith("1.9.")
    assert len(info["feature_names"]) > 50
    assert set(info["validation_metrics"]) == set(CLASSIFICATION_METRICS)


SERVE = r"""
import importlib.util, json, sys, tarfile
archive, dest, body = sys.argv[1], sys.argv[2], sys.stdin.read()
with tarfile.open(archive) as tar:
    tar.extractall(dest, filter="data")
spec = importlib.util.spec_from_file_location("inference", dest + "/code/inference.py")
inference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(inference)
model = inference.model_fn(dest)
response = inference.transform_fn(model, body, "text/csv", "application/json")  # as the container calls it
assert response.status_code == 200, response.get_data()
content_type, out = response.headers["Content-Type"], response.get_data()
print(json.dumps({"content_type": content_type, "body": json.loads(out),
                  "modules": sorted(m.__file__ for n, m in sys.modules.items()
                                    if n in ("featurizer", "stsmodel", "stscontracts", "stscontracts.names"))}))
"""


def test_archive_serves_the_same_predictions_outside_the_repo(binary_run, tmp_path, script_env):
    pairs = [(s1, s2) for _, s1, s2 in rows_of(binary_run.test / names.TEST_FILE)]
    body = "".join(f'"{a.replace(chr(34), 2 * chr(34))}","{b.replace(chr(34), 2 * chr(34))}"\n'
                   for a, b in pairs)
    proc = subprocess.run([sys.executable, "-c", SERVE, str(binary_run.packed / names.MODEL_ARCHIVE),
                           str(tmp_path / "model")], input=body, env=script_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["content_type"] == "application/json"
    # The pickled model was resolved against the archive's own code/ folder, and the contracts came with it.
    loaded = {m.removeprefix(str(tmp_path / "model" / "code") + "/") for m in result["modules"]}
    assert loaded >= {"featurizer.py", "stscontracts/__init__.py", "stscontracts/names.py"}
    assert all(m.startswith(str(tmp_path / "model" / "code")) for m in result["modules"])
    served = [p["probability"] for p in result["body"]["predictions"]]
    pipeline, _ = steputil.load_model(binary_run.packed)
    expected = pipeline.predict_proba(pairs)[:, 1]
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert [p["label"] for p in result["body"]["predictions"]] == [int(p >= 0.5) for p in expected]


@pytest.mark.slow
def test_regression_pipeline_outputs(regression_run):
    report = json.loads((regression_run.evaluation / names.EVALUATION_FILE).read_text())
    assert report["problem_type"] == names.REGRESSION
    check_metric_block(report["regression_metrics"], REGRESSION_METRICS)
    assert report["item_count"] == len(rows_of(regression_run.test / names.TEST_FILE))
    baseline = rows_of(regression_run.baseline / names.BASELINE_CSV)
    assert baseline[0] == ["prediction", "label"]
    info = json.loads((regression_run.model / names.MODEL_INFO_FILE).read_text())
    low, high = info["labels"]["min"], info["labels"]["max"]
    assert all(low <= float(p) <= high for p, _ in baseline[1:])  # clipped to the training range
    checks = json.loads((regression_run.baseline / names.CONSTRAINTS_FILE).read_text())
    checks = checks[names.CONSTRAINTS_KEY[names.REGRESSION]]
    assert {k: v["comparison_operator"] for k, v in checks.items()} == {
        "mae": "GreaterThanThreshold", "mse": "GreaterThanThreshold",
        "rmse": "GreaterThanThreshold", "r2": "LessThanThreshold"}
    stats = json.loads((regression_run.baseline / names.STATISTICS_FILE).read_text())
    assert checks["mae"]["threshold"] >= stats["regression_metrics"]["mae"]["value"]


@pytest.mark.slow
def test_regression_model_serves_scores(regression_run):
    import inference

    model = inference.model_fn(str(regression_run.model))
    data = inference.parse_request(b'{"instances": [{"sentence1": "A cat sat.", "sentence2": "A cat sat."}]}',
                                   "application/json")
    body, content_type = inference.format_response(inference.predict(data, model), None)
    assert content_type == "application/json"
    [prediction] = json.loads(body)["predictions"]
    assert set(prediction) == {"score"}
    body, content_type = inference.format_response(inference.predict(data, model), "text/csv")
    assert content_type == "text/csv" and float(body.strip()) == pytest.approx(prediction["score"])


def test_training_is_deterministic_under_a_seed(binary_run, tmp_path):
    import train

    preds = []
    for run in ("a", "b"):
        train.train(binary_run.train, tmp_path / run, binary_run.validation, created_at=WHEN)
        pipeline, _ = steputil.load_model(tmp_path / run)
        y, pairs = steputil.read_split(binary_run.test)
        preds.append(pipeline.predict_proba(pairs)[:, 1])
    np.testing.assert_array_equal(preds[0], preds[1])


def test_no_test_pair_reaches_training(binary_run):
    train_pairs = {(a, b) for _, a, b in rows_of(binary_run.train / names.TRAIN_FILE)}
    for folder, name in ((binary_run.validation, names.VALIDATION_FILE), (binary_run.test, names.TEST_FILE)):
        assert not train_pairs & {(a, b) for _, a, b in rows_of(folder / name)}
    fz = __import__("joblib").load(binary_run.model / names.MODEL_FILE).named_steps["features"]
    assert fz.n_documents_ == 2 * 32  # IDF learned from the 32 training pairs only


# ------------------------------------------------------------------ the files follow their schemas


def _docs(run) -> dict[str, dict]:
    return {name: json.loads((folder / name).read_text())
            for folder, name in ((run.evaluation, names.EVALUATION_FILE), (run.baseline, names.STATISTICS_FILE),
                                 (run.baseline, names.CONSTRAINTS_FILE))}


@pytest.mark.slow
def test_the_scripts_outputs_follow_their_json_schemas(binary_run, regression_run):
    """evaluation.json, statistics.json and constraints.json as the scripts wrote them
    (stscontracts/schemas/; the container does not validate, so the suite does)."""
    for run in (binary_run, regression_run):
        for name, document in _docs(run).items():
            assert documents.problems(document, documents.kind_of_file(name)) == [], name


@pytest.mark.parametrize("name, change, problem", [
    (names.EVALUATION_FILE, lambda d: d["binary_classification_metrics"].pop("auc"), "'auc' is a required property"),
    (names.EVALUATION_FILE, lambda d: d.update(problem_type="Ranking"), "problem_type: 'Ranking' is not one of"),
    (names.EVALUATION_FILE, lambda d: d["binary_classification_metrics"]["accuracy"].update(value="high"),
     "binary_classification_metrics.accuracy.value: 'high' is not of type"),
    (names.STATISTICS_FILE, lambda d: d["dataset"].update(evaluation_time="yesterday"),
     "dataset.evaluation_time: 'yesterday' is not a UTC time"),
    (names.STATISTICS_FILE, lambda d: d.update(regression_metrics={}),
     "(the document): must have exactly one metrics block: binary_classification_metrics or regression_metrics"),
    (names.CONSTRAINTS_FILE, lambda d: d["binary_classification_constraints"]["f1"].update(comparison_operator="Below"),
     "binary_classification_constraints.f1.comparison_operator: 'Below' is not one of"),
    (names.CONSTRAINTS_FILE, lambda d: d["binary_classification_constraints"]["f1"].pop("threshold"),
     "'threshold' is a required property"),
])
def test_a_broken_output_is_refused_naming_where(binary_run, name, change, problem):
    document = _docs(binary_run)[name]
    change(document)
    with pytest.raises(documents.DocumentError) as caught:
        documents.validate(document, documents.kind_of_file(name), where=name)
    assert str(caught.value).startswith(f"{name}: not a valid ")
    assert any(problem in p for p in caught.value.problems), caught.value.problems
