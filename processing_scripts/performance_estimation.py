"""Quality before labels: confidence-based performance estimation (CBPE) and the calibration it needs.

CBPE (NannyML's "Confidence-based Performance Estimation"): when the served
probabilities are calibrated, a pair answered ``label`` with probability ``p``
of the positive class is right with probability ``p`` (label 1) or ``1 - p``
(label 0). The window's expected confusion matrix is then

    TP = sum of p over label 1     FP = sum of (1 - p) over label 1
    FN = sum of p over label 0     TN = sum of (1 - p) over label 0

and accuracy, precision, recall and F1 follow from it as from a realized one.
The interval: each pair's correctness is an independent Bernoulli draw, so the
realized counts are Poisson-binomial around those sums; :func:`estimate` draws
them (exactly for windows of up to ``EXACT_DRAWS_MAX`` pairs, else from the
normal approximation with the same mean and variance) and reports the central
``level`` share of the metrics' draws.

What it cannot see: label shift the inputs do not show (noisy or changed
labels, a new meaning of "paraphrase"), and inputs on which the model is
confidently wrong — mismatched pairs, for example, get confident 0s, so the
estimate *rises* while the data-quality check alarms. Calibration is checked
on the baseline (:func:`calibration`: expected calibration error over 10
equal-width bins, the reliability table, the Brier score); the estimate is only
as good as that.

Regression: not estimated. CBPE needs a predicted distribution of the target,
and the endpoint serves a single score; nothing in it says how far off a score
is, so any "estimated mae" would be a guess.

numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The metrics CBPE estimates (Model Monitor's names).
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1")
#: Windows up to this many pairs draw every pair's correctness; larger ones use the normal approximation.
EXACT_DRAWS_MAX = 2000
DRAWS = 2000
CALIBRATION_BINS = 10
#: Below this expected calibration error the baseline counts as well calibrated (a rule of thumb: the
#: estimates then sit within about that much of the realized accuracy, docs/monitoring.md).
ECE_WELL_CALIBRATED = 0.05


def _metrics(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        n = tp + fp + fn + tn
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        return {"accuracy": (tp + tn) / n, "precision": precision, "recall": recall, "f1": f1}


def estimate(probability: np.ndarray, predicted_label: np.ndarray, *, level: float = 0.95,
             draws: int = DRAWS, seed: int = 0) -> dict[str, dict[str, float]]:
    """``{metric: {"value", "lower", "upper"}}`` of a window from its served probabilities and labels.

    Pairs whose probability is not finite are left out; an empty window gives ``{}``.
    """
    p = np.asarray(probability, dtype=float)
    label = np.asarray(predicted_label, dtype=float)
    keep = np.isfinite(p) & np.isfinite(label)
    p, positive = np.clip(p[keep], 0.0, 1.0), label[keep] == 1
    n = len(p)
    if n == 0:
        return {}
    n1 = float(positive.sum())
    n0 = n - n1
    tp_mean, fn_mean = float(p[positive].sum()), float(p[~positive].sum())
    point = _metrics(np.array([tp_mean]), np.array([n1 - tp_mean]), np.array([fn_mean]), np.array([n0 - fn_mean]))
    rng = np.random.default_rng(seed)
    if n <= EXACT_DRAWS_MAX:
        outcomes = rng.random((draws, n)) < p  # the pair's true label is 1
        tp = (outcomes & positive).sum(axis=1).astype(float)
        fn = (outcomes & ~positive).sum(axis=1).astype(float)
    else:
        var1 = float((p[positive] * (1 - p[positive])).sum())
        var0 = float((p[~positive] * (1 - p[~positive])).sum())
        tp = np.clip(np.round(rng.normal(tp_mean, math.sqrt(var1), draws)), 0, n1)
        fn = np.clip(np.round(rng.normal(fn_mean, math.sqrt(var0), draws)), 0, n0)
    drawn = _metrics(tp, n1 - tp, fn, n0 - fn)
    tail = (1 - level) / 2 * 100
    out = {}
    for name in ESTIMATED_METRICS:
        low, high = np.percentile(drawn[name], [tail, 100 - tail])
        out[name] = {"value": round(float(point[name][0]), 6), "lower": round(float(low), 6),
                     "upper": round(float(high), 6)}
    return out


def calibration(probability: np.ndarray, label: np.ndarray, *, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """The calibration of probabilities against true 0/1 labels: expected calibration error (the
    count-weighted mean gap between each bin's mean probability and its positive rate, 10 equal-width
    bins), the largest gap of a bin with at least 10 pairs, the Brier score and the reliability table."""
    p = np.asarray(probability, dtype=float)
    y = np.asarray(label, dtype=float)
    keep = np.isfinite(p) & np.isfinite(y)
    p, y = p[keep], y[keep]
    n = len(p)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, bins - 1)
    table, ece, worst = [], 0.0, 0.0
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        row: dict[str, Any] = {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count}
        if count:
            mean_p, rate = float(p[inside].mean()), float(y[inside].mean())
            row.update(mean_probability=round(mean_p, 6), positive_rate=round(rate, 6))
            ece += count / n * abs(mean_p - rate)
            if count >= 10:
                worst = max(worst, abs(mean_p - rate))
        table.append(row)
    brier = float(np.mean((p - y) ** 2)) if n else math.nan
    return {"pairs": n, "bins": bins, "expected_calibration_error": round(ece, 6),
            "max_bin_gap": round(worst, 6), "brier_score": round(brier, 6),
            "well_calibrated": bool(n and ece <= ECE_WELL_CALIBRATED),
            "well_calibrated_below": ECE_WELL_CALIBRATED, "reliability": table}
