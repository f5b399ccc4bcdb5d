"""performance_estimation: CBPE (NannyML's confidence-based performance estimation) and calibration.

With calibrated probabilities the estimate is unbiased: labels drawn from the probabilities give realized
metrics that the interval covers at about its level. The expected confusion matrix is NannyML's
(docs "How it works: CBPE": sum p over predicted positives for TP, and so on).
"""

from __future__ import annotations

import numpy as np
import pytest

import performance_estimation as pe


def _realized(label, pred):
    tp = ((pred == 1) & (label == 1)).sum()
    fp = ((pred == 1) & (label == 0)).sum()
    fn = ((pred == 0) & (label == 1)).sum()
    return {"accuracy": (pred == label).mean(), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn)}


@pytest.mark.parametrize("n", [200, 5000])  # exact draws, normal approximation
def test_the_interval_covers_the_realized_metrics_of_calibrated_windows(n):
    rng = np.random.default_rng(n)
    covered = {m: 0 for m in pe.ESTIMATED_METRICS}
    errors = []
    windows = 60
    for w in range(windows):
        p = rng.beta(0.7, 0.5, n)
        pred = (p >= 0.5).astype(float)
        label = (rng.random(n) < p).astype(float)  # calibrated: P(label 1) = p
        est = pe.estimate(p, pred, seed=w, draws=500)
        real = _realized(label, pred)
        for m in pe.ESTIMATED_METRICS:
            covered[m] += est[m]["lower"] <= real[m] <= est[m]["upper"]
        errors.append(est["accuracy"]["value"] - real["accuracy"])
    assert abs(np.mean(errors)) < 0.01  # unbiased
    for m, hits in covered.items():
        assert hits / windows >= 0.85, (m, hits)  # a 95 % interval; 60 windows leave room for chance


def test_point_estimate_is_the_expected_confusion_matrix():
    p = np.array([0.9, 0.8, 0.3, 0.1])
    pred = np.array([1, 1, 0, 0])
    est = pe.estimate(p, pred, draws=50)
    tp, fp, fn, tn = 1.7, 0.3, 0.4, 1.6
    assert est["accuracy"]["value"] == pytest.approx((tp + tn) / 4)
    assert est["precision"]["value"] == pytest.approx(tp / (tp + fp))
    assert est["recall"]["value"] == pytest.approx(tp / (tp + fn))
    assert est["f1"]["value"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert pe.estimate(np.array([np.nan]), np.array([1])) == {}


def test_calibration_tells_calibrated_from_overconfident():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 4000)
    label = (rng.random(4000) < p).astype(float)
    good = pe.calibration(p, label)
    assert good["well_calibrated"] and good["expected_calibration_error"] < 0.03
    assert sum(b["count"] for b in good["reliability"]) == 4000 and len(good["reliability"]) == 10
    sharp = np.where(p >= 0.5, 0.99, 0.01)  # the same ranking, overconfident
    bad = pe.calibration(sharp, label)
    assert not bad["well_calibrated"] and bad["expected_calibration_error"] > 0.2
