"""Model-quality metrics in SageMaker's model-metrics / Model Monitor form, with bootstrap deviations.

Shared by ``evaluate.py``, ``baseline.py`` (and usable by ``monitor.py``) so
that every step computes a metric the same way. numpy and scipy only.

Every metric is ``{"value": v, "standard_deviation": s}``; ``s`` is the
standard deviation of the metric over ``n_bootstrap`` resamples of the rows
(with replacement, seeded). A metric that is undefined for the data (AUC with
one class, Pearson with a constant column) has ``value`` ``null``; a
deviation that cannot be estimated (fewer than two defined resamples, or
``n_bootstrap`` 0) is ``null`` too.

Binary classification metrics (Model Monitor's names): accuracy, precision,
recall, f0_5, f1, f2, auc, true/false positive/negative rates and the same
for the *best constant classifier* (always predicting the positive class for
precision/recall/F, the majority class for accuracy). Precision and recall
are 0 when their denominator is 0. ``confusion_matrix`` is
``{actual: {predicted: count}}`` with labels ``"0"``/``"1"``.

Regression metrics: mae, mse, rmse, r2 (Model Monitor's names), pearson and
spearman correlation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

BINARY_METRICS = (
    "accuracy", "precision", "recall", "f0_5", "f1", "f2", "auc",
    "true_positive_rate", "true_negative_rate", "false_positive_rate", "false_negative_rate",
    "accuracy_best_constant_classifier", "precision_best_constant_classifier",
    "recall_best_constant_classifier", "f0_5_best_constant_classifier",
    "f1_best_constant_classifier", "f2_best_constant_classifier",
)
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "pearson", "spearman")

#: Metrics where a larger value is worse (a constraint fires when the value is above the threshold).
LOWER_IS_BETTER = frozenset({"mae", "mse", "rmse"})

_CHUNK = 256  # bootstrap rows computed at once (memory: _CHUNK x n floats)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def _f_beta(p: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    return _div((1 + b2) * p * r, b2 * p + r)


def _binary_rows(y: np.ndarray, pred: np.ndarray, prob: np.ndarray | None) -> dict[str, np.ndarray]:
    """Metrics of each row of 2-D arrays (one row per resample)."""
    n = y.shape[1]
    tp = np.sum((y == 1) & (pred == 1), axis=1)
    fp = np.sum((y == 0) & (pred == 1), axis=1)
    fn = np.sum((y == 1) & (pred == 0), axis=1)
    tn = n - tp - fp - fn
    pos = tp + fn
    neg = n - pos
    precision, recall = _div(tp, tp + fp), _div(tp, pos)
    base = pos / n  # positive rate = precision of always predicting 1
    ones = np.ones_like(base)
    out = {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f0_5": _f_beta(precision, recall, 0.5),
        "f1": _f_beta(precision, recall, 1.0),
        "f2": _f_beta(precision, recall, 2.0),
        "true_positive_rate": recall,
        "true_negative_rate": _div(tn, neg),
        "false_positive_rate": _div(fp, neg),
        "false_negative_rate": _div(fn, pos),
        "accuracy_best_constant_classifier": np.maximum(base, 1 - base),
        "precision_best_constant_classifier": base,
        "recall_best_constant_classifier": np.where(pos > 0, ones, 0.0),
        "f0_5_best_constant_classifier": _f_beta(base, np.where(pos > 0, ones, 0.0), 0.5),
        "f1_best_constant_classifier": _f_beta(base, np.where(pos > 0, ones, 0.0), 1.0),
        "f2_best_constant_classifier": _f_beta(base, np.where(pos > 0, ones, 0.0), 2.0),
    }
    if prob is None:
        out["auc"] = np.full(y.shape[0], np.nan)
    else:
        ranks = rankdata(prob, axis=1)  # average ranks for ties (Mann-Whitney U)
        u = np.sum(ranks * (y == 1), axis=1) - pos * (pos + 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            out["auc"] = np.where((pos > 0) & (neg > 0), u / (pos * neg), np.nan)
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.sum(a * b, axis=1) / den, np.nan)


def _regression_rows(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    err = pred - y
    mse = np.mean(err * err, axis=1)
    ss_tot = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1 - np.sum(err * err, axis=1) / ss_tot, np.nan)
    return {
        "mae": np.mean(np.abs(err), axis=1),
        "mse": mse,
        "rmse": np.sqrt(mse),
        "r2": r2,
        "pearson": _corr(y, pred),
        "spearman": _corr(rankdata(y, axis=1), rankdata(pred, axis=1)),
    }


def _number(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _with_bootstrap(rows_fn, arrays: list[np.ndarray | None], names, n_bootstrap: int,
                    random_state: int) -> dict[str, dict]:
    n = len(arrays[0])
    point = rows_fn(*[None if a is None else a[None, :] for a in arrays])
    replicates: dict[str, list[np.ndarray]] = {k: [] for k in names}
    if n_bootstrap > 0 and n > 0:
        rng = np.random.default_rng(random_state)
        done = 0
        while done < n_bootstrap:
            size = min(_CHUNK, n_bootstrap - done)
            idx = rng.integers(0, n, size=(size, n))
            values = rows_fn(*[None if a is None else a[idx] for a in arrays])
            for k in names:
                replicates[k].append(values[k])
            done += size
    out = {}
    for k in names:
        sd = None
        if replicates[k]:
            reps = np.concatenate(replicates[k])
            reps = reps[np.isfinite(reps)]
            if len(reps) >= 2:
                sd = _number(np.std(reps, ddof=1))
        out[k] = {"value": _number(point[k][0]), "standard_deviation": sd}
    return out


def binary_classification_metrics(y_true, y_pred, y_prob=None, *, n_bootstrap: int = 1000,
                                  random_state: int = 0, curves: bool = False) -> dict:
    """``binary_classification_metrics`` block: confusion matrix and every metric with its deviation.

    ``y_true``/``y_pred`` are 0/1, ``y_prob`` the probability of class 1 (for
    AUC and the curves; omit it and ``auc`` is null). ``curves`` adds the ROC
    and precision-recall curves (at most 101 points each).
    """
    y = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    prob = None if y_prob is None else np.asarray(y_prob, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no rows to compute metrics on")
    block: dict = {"confusion_matrix": {
        a: {p: int(np.sum((y == int(a)) & (pred == int(p)))) for p in ("0", "1")} for a in ("0", "1")
    }}
    block.update(_with_bootstrap(_binary_rows, [y, pred, prob], BINARY_METRICS, n_bootstrap, random_state))
    if curves and prob is not None and 0 < y.sum() < len(y):
        from sklearn.metrics import precision_recall_curve, roc_curve

        fpr, tpr, _ = roc_curve(y, prob)
        precisions, recalls, _ = precision_recall_curve(y, prob)
        block["receiver_operating_characteristic_curve"] = {
            "false_positive_rates": _thin(fpr), "true_positive_rates": _thin(tpr)}
        block["precision_recall_curve"] = {"precisions": _thin(precisions), "recalls": _thin(recalls)}
    return block


def regression_metrics(y_true, y_pred, *, n_bootstrap: int = 1000, random_state: int = 0) -> dict:
    """``regression_metrics`` block: every metric with its bootstrap deviation."""
    y = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no rows to compute metrics on")
    return _with_bootstrap(_regression_rows, [y, pred], REGRESSION_METRICS, n_bootstrap, random_state)


def _thin(values: np.ndarray, points: int = 101) -> list[float]:
    if len(values) > points:
        values = values[np.linspace(0, len(values) - 1, points).round().astype(int)]
    return [round(float(v), 6) for v in values]
