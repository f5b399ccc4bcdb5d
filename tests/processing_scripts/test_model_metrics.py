"""model_metrics: values agree with scikit-learn, deviations behave like sampling noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

import model_metrics


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    prob = np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1)
    return y, (prob >= 0.5).astype(int), prob


def test_binary_values_match_scikit_learn(scored):
    y, pred, prob = scored
    block = model_metrics.binary_classification_metrics(y, pred, prob, n_bootstrap=0)
    assert block["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert block["precision"]["value"] == pytest.approx(skm.precision_score(y, pred))
    assert block["recall"]["value"] == pytest.approx(skm.recall_score(y, pred))
    assert block["f1"]["value"] == pytest.approx(skm.f1_score(y, pred))
    assert block["f2"]["value"] == pytest.approx(skm.fbeta_score(y, pred, beta=2))
    assert block["auc"]["value"] == pytest.approx(skm.roc_auc_score(y, prob))
    cm = skm.confusion_matrix(y, pred)
    assert block["confusion_matrix"] == {"0": {"0": cm[0, 0], "1": cm[0, 1]}, "1": {"0": cm[1, 0], "1": cm[1, 1]}}
    assert block["accuracy"]["standard_deviation"] is None  # no resamples asked for


def test_bootstrap_deviation_is_close_to_the_binomial_one(scored):
    y, pred, prob = scored
    block = model_metrics.binary_classification_metrics(y, pred, prob, n_bootstrap=2000, random_state=1)
    acc = block["accuracy"]["value"]
    expected = math.sqrt(acc * (1 - acc) / len(y))
    assert block["accuracy"]["standard_deviation"] == pytest.approx(expected, rel=0.1)
    again = model_metrics.binary_classification_metrics(y, pred, prob, n_bootstrap=2000, random_state=1)
    assert again == block
    json.dumps(block, allow_nan=False)


def test_undefined_metrics_are_null_not_nan():
    y = np.ones(10, dtype=int)
    block = model_metrics.binary_classification_metrics(y, y, np.full(10, 0.9), n_bootstrap=50, curves=True)
    assert block["auc"] == {"value": None, "standard_deviation": None}
    assert block["accuracy"]["value"] == 1.0
    assert "receiver_operating_characteristic_curve" not in block
    json.dumps(block, allow_nan=False)


def test_curves_are_thinned(scored):
    y, pred, prob = scored
    block = model_metrics.binary_classification_metrics(y, pred, prob, n_bootstrap=0, curves=True)
    roc = block["receiver_operating_characteristic_curve"]
    assert 2 <= len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) <= 101
    assert roc["false_positive_rates"][0] == 0.0 and roc["true_positive_rates"][-1] == 1.0


def test_regression_values_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.random(300) * 5
    pred = y + rng.normal(0, 0.5, 300)
    block = model_metrics.regression_metrics(y, pred, n_bootstrap=300)
    assert block["mae"]["value"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert block["mse"]["value"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert block["rmse"]["value"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)))
    assert block["r2"]["value"] == pytest.approx(skm.r2_score(y, pred))
    assert block["pearson"]["value"] == pytest.approx(np.corrcoef(y, pred)[0, 1])
    assert 0 < block["mae"]["standard_deviation"] < 0.1
    assert set(block) == set(model_metrics.REGRESSION_METRICS)


def test_empty_input_is_refused():
    with pytest.raises(ValueError):
        model_metrics.binary_classification_metrics([], [], [])


# Model Monitor's documented example (AWS docs, "Model quality metrics and Amazon CloudWatch monitoring",
# awsdocs amazon-sagemaker-developer-guide, model-monitor-model-quality-metrics.md): confusion matrix
# {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}} -> the best constant classifier predicts the positive
# class for every record: precision 0.25, recall 1.0, accuracy 0.25 (majority-class accuracy would be 0.75).
AWS_EXAMPLE = (np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1]))


@pytest.mark.parametrize("form", ["model metrics (evaluate, baseline)", "Model Monitor (monitor)"])
def test_best_constant_classifier_is_model_monitors_in_every_form(form):
    """One definition for every step: the baseline's statistics.json (and a constraint on
    accuracy_best_constant_classifier) and the monitor's window value mean the same thing.
    Before, model_metrics gave the majority class's accuracy (0.75 here) and the monitor 0.25."""
    y, pred = AWS_EXAMPLE
    if form.startswith("model metrics"):
        block = model_metrics.binary_classification_metrics(y, pred, n_bootstrap=0)
    else:
        block = model_metrics.model_monitor_binary_metrics(y, pred)
    value = {k: v["value"] for k, v in block.items() if k != "confusion_matrix"}
    assert block["confusion_matrix"] == {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}}
    assert (value["recall"], value["precision"], value["accuracy"]) == (1.0, pytest.approx(1 / 3), 0.5)
    assert value["recall_best_constant_classifier"] == 1.0
    assert value["precision_best_constant_classifier"] == 0.25
    assert value["accuracy_best_constant_classifier"] == 0.25
    assert value["f1_best_constant_classifier"] == pytest.approx(0.4)  # the example's 0.4
    assert value["f2_best_constant_classifier"] == pytest.approx(0.625)
    assert value["true_negative_rate"] == pytest.approx(1 / 3) and value["false_positive_rate"] == pytest.approx(2 / 3)


def test_model_monitor_form_has_subsample_deviations_and_nan_strings(scored):
    y, pred, prob = scored  # 400 rows: >= 200, so deviations from 5 subsamples of 320
    block = model_metrics.model_monitor_binary_metrics(y, pred, prob, seed=0)
    assert list(block)[:2] == ["confusion_matrix", "accuracy"]
    assert [k for k in block if k in model_metrics.MODEL_MONITOR_BINARY_METRICS] == list(model_metrics.MODEL_MONITOR_BINARY_METRICS)
    assert block["auc"]["value"] == skm.roc_auc_score(y, prob)  # exact: both the Mann-Whitney statistic
    rng = np.random.default_rng(0)
    rounds = [rng.choice(len(y), size=320, replace=False) for _ in range(5)]
    expected = np.std([skm.accuracy_score(y[i], pred[i]) for i in rounds])
    assert block["accuracy"]["standard_deviation"] == pytest.approx(expected, rel=1e-12)
    assert set(block["receiver_operating_characteristic_curve"]) == {"false_positive_rates", "true_positive_rates"}
    small = model_metrics.model_monitor_binary_metrics(y[:199], pred[:199], prob[:199])
    assert small["accuracy"]["standard_deviation"] == "NaN"  # fewer than 200 records: no deviation
    one_class = model_metrics.model_monitor_binary_metrics(np.ones(300, int), np.ones(300, int), np.full(300, 0.8))
    assert one_class["auc"] == {"value": "NaN", "standard_deviation": "NaN"}
    assert "receiver_operating_characteristic_curve" not in one_class
    json.dumps(block, allow_nan=False)
    regression = model_metrics.model_monitor_regression_metrics(prob * 5, pred * 5)
    assert list(regression) == ["mae", "mse", "rmse", "r2"]
    assert regression["r2"]["value"] == pytest.approx(skm.r2_score(prob * 5, pred * 5))


@pytest.mark.parametrize("seed", range(6))
def test_auc_and_curves_are_exactly_the_libraries(seed):
    """model_metrics computes AUC and the curves from one sort, with numpy alone (the monitor then
    imports neither scipy nor scikit-learn: 1.3 s of a 6 s budget); the values are the libraries'."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 3000))
    y = rng.integers(0, 2, n)
    y[:2] = (0, 1)  # both classes
    prob = rng.integers(0, 30, n) / 29 if seed % 2 else rng.random(n)  # many ties, or none
    pred = (prob >= 0.5).astype(int)
    for block in (model_metrics.binary_classification_metrics(y, pred, prob, n_bootstrap=0, curves=True),
                  model_metrics.model_monitor_binary_metrics(y, pred, prob)):
        ranks = rankdata(prob)
        pos = y.sum()
        mann_whitney = (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (n - pos))
        assert block["auc"]["value"] == mann_whitney
        assert block["auc"]["value"] == pytest.approx(skm.roc_auc_score(y, prob), rel=1e-13, abs=0)
        fpr, tpr, _ = skm.roc_curve(y, prob)
        precisions, recalls, _ = skm.precision_recall_curve(y, prob)
        thin = model_metrics._thin
        assert block["receiver_operating_characteristic_curve"] == {
            "false_positive_rates": thin(fpr), "true_positive_rates": thin(tpr)}
        assert block["precision_recall_curve"] == {"precisions": thin(precisions), "recalls": thin(recalls)}


def test_resampled_auc_is_the_auc_of_the_resampled_rows():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    prob = rng.integers(0, 10, 500) / 9
    idx = rng.integers(0, 500, size=(4, 500))  # with repeats, as the bootstrap draws them
    ranked = model_metrics._Ranked(prob)
    rows = model_metrics._auc_rows(y, ranked, idx)
    np.testing.assert_allclose(rows, [skm.roc_auc_score(y[i], prob[i]) for i in idx], rtol=1e-13, atol=0)
