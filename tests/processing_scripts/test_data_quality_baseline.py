"""data_quality_baseline.py: the data-quality baseline of a trained model on its validation split."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

import data_quality
import data_quality_baseline
import pair_features
from stscontracts import documents, names
from steputil import load_model


@pytest.fixture(scope="module")
def dq_baseline(binary_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("dq") / "data-quality-baseline"
    code = data_quality_baseline.run_main(data_quality_baseline.main, [
        "--model-dir", str(binary_run.packed), "--validation-dir", str(binary_run.validation),
        "--output-dir", str(out), "--comparison-threshold", "0.15"])
    assert code == 0
    return out


def test_statistics_and_constraints_cover_every_watched_feature(dq_baseline, binary_run):
    statistics = json.loads((dq_baseline / names.STATISTICS_FILE).read_text())
    constraints = json.loads((dq_baseline / names.CONSTRAINTS_FILE).read_text())
    expected = [n for n, _ in pair_features.features(names.BINARY_CLASSIFICATION)]
    assert [f["name"] for f in statistics["features"]] == expected == [f["name"] for f in constraints["features"]]
    rows = sum(1 for _ in (binary_run.validation / names.VALIDATION_FILE).open())
    assert statistics["dataset"]["item_count"] == rows
    for feature in statistics["features"]:
        assert feature["numerical_statistics"]["common"] == {"num_present": rows, "num_missing": 0}
    assert all(f["completeness"] == 1.0 for f in constraints["features"])
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.15
    data_quality.validate_constraints(constraints, "constraints.json")
    documents.validate(statistics, documents.DATA_QUALITY_STATISTICS, where="statistics.json")
    documents.validate(constraints, documents.DATA_QUALITY_CONSTRAINTS, where="constraints.json")
    # the baseline against itself: no violation
    columns = {f["name"]: [v for level in f["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
                           for v in level] for f in statistics["features"]}
    assert data_quality.check(constraints, statistics, statistics, columns)[0] == []


def test_calibration_and_estimates_on_the_validation_split(dq_baseline):
    report = json.loads((dq_baseline / names.CALIBRATION_FILE).read_text())
    assert 0 <= report["expected_calibration_error"] <= 1 and len(report["reliability"]) == 10
    for metric, row in report["estimates_on_validation"].items():
        assert row["lower"] <= row["value"] <= row["upper"]
        assert 0 <= row["realized"] <= 1


def test_vocabulary_and_preprocessor_are_the_models(dq_baseline, binary_run):
    pipeline, _ = load_model(binary_run.packed)
    vocabulary = (dq_baseline / names.VOCABULARY_FILE).read_text().split("\n")[:-1]
    assert vocabulary == sorted(pipeline.named_steps["features"].word_idf_)
    spec = importlib.util.spec_from_file_location("preprocessor", dq_baseline / names.PREPROCESSOR_FILE)
    preprocessor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(preprocessor)
    assert preprocessor.VOCABULARY == frozenset(vocabulary)
    record = SimpleNamespace(endpoint_input=SimpleNamespace(data='"The cat sat.",Zyxwv qqq\n', observedContentType="text/csv"),
                             endpoint_output=SimpleNamespace(data="0,0.2\n", observedContentType="text/csv"))
    (row,) = preprocessor.preprocess_handler(record)
    assert row["sentence2_unseen_share"] == 1.0 and row["probability"] == 0.2
    assert [row[n] for n, _ in pair_features.PAIR_FEATURES] == list(
        pair_features.pair_row("The cat sat.", "Zyxwv qqq", set(vocabulary)))


def test_bad_arguments_are_user_errors(binary_run, tmp_path, capsys):
    out = tmp_path / "out"
    code = data_quality_baseline.run_main(data_quality_baseline.main, [
        "--model-dir", str(binary_run.packed), "--validation-dir", str(binary_run.validation),
        "--output-dir", str(out), "--comparison-method", "Fancy"])
    assert code == 2 and "--comparison-method must be one of Robust, Simple" in capsys.readouterr().err
    assert not out.exists()
