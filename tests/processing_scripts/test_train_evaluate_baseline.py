"""train.py, evaluate.py and baseline.py: arguments, hyperparameters, the threshold rule, user errors."""

from __future__ import annotations

import json
import math
import tarfile
from datetime import datetime, timezone

import pytest

import baseline
from stscontracts import metrics as registry
from stscontracts import names
import evaluate
import stsmodel
import train
from script_runs import run_script

WHEN = datetime(2033, 5, 17, 12, 30, 0, 250_000, tzinfo=timezone.utc)


def test_hyperparameters_arrive_as_arguments(binary_run, tmp_path):
    code = train.run_main(train.main, [
        "--train", str(binary_run.train), "--model-dir", str(tmp_path / "m"),
        "--estimator", "logistic", "--calibration", "none", "--supervised-features", "False", "--c", "2"])
    assert code == 0
    info = json.loads((tmp_path / "m" / names.MODEL_INFO_FILE).read_text())
    assert info["hyperparameters"]["estimator"] == "logistic"
    assert info["hyperparameters"]["supervised_features"] is False
    assert info["row_counts"]["validation"] == 0  # no validation channel: none scored
    import joblib

    pipeline = joblib.load(tmp_path / "m" / names.MODEL_FILE)
    assert pipeline.named_steps["model"].named_steps["lr"].C == 2.0
    assert "nb_logodds" not in info["feature_names"]


def test_sagemaker_environment_gives_the_paths(binary_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(binary_run.train))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    args = train.parse_args([])
    assert (args.train, args.model_dir) == (binary_run.train, tmp_path / "model")
    monkeypatch.delenv("SM_CHANNEL_TRAIN")
    assert str(train.parse_args([]).train) == "/opt/ml/input/data/train"


@pytest.mark.parametrize("args, message", [
    (["--c", "-1"], "c must be > 0"),
    (["--estimator", "forest"], "estimator 'forest' is not one of"),
    (["--calibration-folds", "1"], "calibration-folds must be >= 2"),
    (["--calibration", "sigmoid", "--calibration-folds", "50"], "lower it"),
])
def test_bad_hyperparameters_are_user_errors(binary_run, tmp_path, capsys, args, message):
    code = train.run_main(train.main, ["--train", str(binary_run.train), "--model-dir", str(tmp_path / "m"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_unknown_hyperparameter_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as info:
        train.parse_args(["--colour", "blue"])
    assert info.value.code == 2


def test_train_split_problems(tmp_path, capsys):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "train.csv").write_text("1,a b,a b\n1,c d,c d\n1,e f,e g\n")
    assert train.run_main(train.main, ["--train", str(folder), "--model-dir", str(tmp_path / "m")]) == 2
    assert "at least 2 pairs of each label" in capsys.readouterr().err
    (folder / "train.csv").write_text("1,a,b\nx,c,d\n")
    assert train.run_main(train.main, ["--train", str(folder), "--model-dir", str(tmp_path / "m")]) == 2
    assert f"{folder / 'train.csv'}:2: label 'x' is not a number" in capsys.readouterr().err
    (folder / "train.csv").write_text("1,a\n")
    assert train.run_main(train.main, ["--train", str(folder), "--model-dir", str(tmp_path / "m")]) == 2
    assert "expected 3 columns" in capsys.readouterr().err
    assert train.run_main(train.main, ["--train", str(tmp_path / "none"), "--model-dir", str(tmp_path / "m")]) == 2
    assert "train folder not found" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("metric, problem_type, value, sd, expected", [
    ("accuracy", names.BINARY_CLASSIFICATION, 0.8, 0.01, {"threshold": 0.77, "comparison_operator": "LessThanThreshold"}),
    ("auc", names.BINARY_CLASSIFICATION, 0.02, 0.01, {"threshold": 0.0, "comparison_operator": "LessThanThreshold"}),
    ("mae", names.REGRESSION, 0.5, 0.02, {"threshold": 0.56, "comparison_operator": "GreaterThanThreshold"}),
    ("r2", names.REGRESSION, 0.01, 0.01, {"threshold": -0.02, "comparison_operator": "LessThanThreshold"}),
    ("f1", names.BINARY_CLASSIFICATION, 0.8, None, {"threshold": 0.8, "comparison_operator": "LessThanThreshold"}),
])
def test_threshold_rule(metric, problem_type, value, sd, expected):
    row = registry.metric(metric, problem_type)
    assert baseline.constraint(row, value, sd, tolerance_sd=3, scale=1.0) == expected


def test_window_size_and_tolerance_widen_the_thresholds(binary_run, tmp_path):
    n = 8  # validation pairs
    wide = baseline.baseline(binary_run.packed, binary_run.validation, tmp_path / "w", tolerance_sd=2,
                             window_size=n // 4, metrics=["f1"], n_bootstrap=200, evaluated_at=WHEN)
    narrow = baseline.baseline(binary_run.packed, binary_run.validation, tmp_path / "n", tolerance_sd=2,
                               metrics=["f1"], n_bootstrap=200, evaluated_at=WHEN)
    statistics = json.loads((tmp_path / "n" / names.STATISTICS_FILE).read_text())
    assert statistics["dataset"]["evaluation_time"] == "2033-05-17T12:30:00.250Z"  # the time it was given
    stats = statistics["binary_classification_metrics"]
    value, sd = stats["f1"]["value"], stats["f1"]["standard_deviation"]
    key = names.CONSTRAINTS_KEY[names.BINARY_CLASSIFICATION]
    assert list(narrow[key]) == ["f1"]
    assert narrow[key]["f1"]["threshold"] == pytest.approx(max(value - 2 * sd, 0), abs=1e-6)
    assert wide[key]["f1"]["threshold"] == pytest.approx(max(value - 2 * sd * math.sqrt(4), 0), abs=1e-6)


@pytest.mark.parametrize("script, extra, message", [
    ("baseline", ["--metrics", "accuracy,bogus"], "bogus not among the BinaryClassification metrics"),
    # A rate the metric registry has no direction for: a threshold could land on the wrong side
    # (false_positive_rate got LessThanThreshold, an alarm when it *improves*).
    ("baseline", ["--metrics", "false_positive_rate"], "false_positive_rate not among the BinaryClassification metrics"),
    ("baseline", ["--tolerance-sd", "-1"], "--tolerance-sd must be >= 0"),
    ("evaluate", ["--bootstrap-samples", "-5"], "--bootstrap-samples must be >= 0"),
])
def test_bad_arguments_leave_no_outputs(binary_run, tmp_path, capsys, script, extra, message):
    module = {"baseline": baseline, "evaluate": evaluate}[script]
    data = "--validation-dir" if script == "baseline" else "--test-dir"
    folder = binary_run.validation if script == "baseline" else binary_run.test
    code = module.run_main(module.main, ["--model-dir", str(binary_run.packed), data, str(folder),
                                         "--output-dir", str(tmp_path / "out"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_or_broken_model(binary_run, tmp_path, capsys, script_env):
    args = ["--test-dir", str(binary_run.test), "--output-dir", str(tmp_path / "out")]
    assert evaluate.run_main(evaluate.main, ["--model-dir", str(tmp_path), *args]) == 2
    assert "no model.tar.gz or model.joblib" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.tar.gz").write_bytes(b"not a tarball")
    proc = run_script("evaluate.py", ["--model-dir", str(broken), *args], script_env, check=False)
    assert proc.returncode == 2 and "not a readable model.tar.gz" in proc.stderr
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / "model.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        tar.addfile(info)
    assert evaluate.run_main(evaluate.main, ["--model-dir", str(evil), *args]) == 2
    assert "unsafe archive member '../escape.txt'" in capsys.readouterr().err
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_evaluate_accepts_an_extracted_model_and_checks_the_labels(binary_run, regression_run, tmp_path, capsys):
    report = evaluate.evaluate(binary_run.model, binary_run.test, tmp_path / "e", n_bootstrap=0)
    assert report["binary_classification_metrics"]["accuracy"]["standard_deviation"] is None
    # A binary model on a graded test split is refused, naming the folder.
    code = evaluate.run_main(evaluate.main, ["--model-dir", str(binary_run.packed), "--test-dir",
                                             str(regression_run.test), "--output-dir", str(tmp_path / "x")])
    assert code == 2
    assert f"{regression_run.test}: label" in capsys.readouterr().err


def test_hyperparameter_defaults_are_the_documented_ones():
    hp = stsmodel.Hyperparameters()
    assert (hp.estimator, hp.calibration) == ("ensemble", "none")  # chosen by CV (bench/model_quality.py)
    args = train.parse_args([])
    assert all(getattr(args, n) == getattr(hp, n) for n in stsmodel.Hyperparameters.names())


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_calibrated_classifiers_train_and_predict(binary_run, tmp_path, calibration):
    from sklearn.calibration import CalibratedClassifierCV

    import steputil

    hp = stsmodel.Hyperparameters(estimator="logistic", calibration=calibration)
    train.train(binary_run.train, tmp_path / "m", hyperparameters=hp, created_at=WHEN)
    pipeline, info = steputil.load_model(tmp_path / "m")
    assert isinstance(pipeline.named_steps["model"], CalibratedClassifierCV)
    assert info["hyperparameters"]["calibration"] == calibration
    _, pairs = steputil.read_split(binary_run.test)
    prob = pipeline.predict_proba(pairs)[:, 1]
    assert ((0 <= prob) & (prob <= 1)).all()
