"""Model-quality metrics, one implementation for every step that computes them.

``evaluate.py`` and ``baseline.py`` (SageMaker model-metrics form, bootstrap
deviations) and ``monitor.py`` (Model Monitor's statistics form, subsample
deviations) compute a metric with the same code, so a baseline value and a
window's value of the same name mean the same thing. numpy only (scipy's
``rankdata`` for Spearman's correlation, which the monitor does not report):
AUC and the curves come from one sort, equal to scikit-learn's (tested).

Two forms of a metrics block, each metric ``{"value": v, "standard_deviation": s}``:

- **model metrics** (:func:`binary_classification_metrics`,
  :func:`regression_metrics`; evaluation.json, the baseline's
  statistics.json): ``s`` is the standard deviation (``ddof=1``) over
  ``n_bootstrap`` resamples of the rows (with replacement, seeded). A metric
  undefined for the data (AUC with one class, Pearson with a constant
  column) has ``value`` ``null``; a deviation that cannot be estimated (fewer
  than two defined resamples, or ``n_bootstrap`` 0) is ``null`` too.
- **Model Monitor's statistics** (:func:`model_monitor_binary_metrics`,
  :func:`model_monitor_regression_metrics`; the monitor's statistics.json):
  as Model Monitor computes them (AWS docs, "Model quality metrics and Amazon
  CloudWatch monitoring"): ``s`` from 5 random 80 % subsamples (without
  replacement, seeded; ``np.std``) when at least 200 records matched, else
  the string ``"NaN"``; an undefined value is ``"NaN"`` too, as Model Monitor
  writes it.

Binary classification metrics (Model Monitor's names): accuracy, precision,
recall, f0_5, f1, f2, auc, true/false positive/negative rates and the same
for the *best constant classifier*, which always predicts the positive class
(Model Monitor's documented example: confusion matrix
``{"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}}`` gives
``accuracy_best_constant_classifier`` 0.25 and
``precision_best_constant_classifier`` 0.25). Precision and recall are 0
when their denominator is 0 (scikit-learn's ``zero_division=0``). AUC is the
Mann-Whitney statistic with average ranks for ties (equal to scikit-learn's
``roc_auc_score``). ``confusion_matrix`` is ``{actual: {predicted: count}}``
with labels ``"0"``/``"1"``.

Regression metrics: mae, mse, rmse, r2 (Model Monitor's names), pearson and
spearman correlation.
"""

from __future__ import annotations

import math

import numpy as np

BINARY_METRICS = (
    "accuracy", "precision", "recall", "f0_5", "f1", "f2", "auc",
    "true_positive_rate", "true_negative_rate", "false_positive_rate", "false_negative_rate",
    "accuracy_best_constant_classifier", "precision_best_constant_classifier",
    "recall_best_constant_classifier", "f0_5_best_constant_classifier",
    "f1_best_constant_classifier", "f2_best_constant_classifier",
)
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "pearson", "spearman")

#: The scalar metrics Model Monitor reports, in its statistics.json order.
MODEL_MONITOR_BINARY_METRICS = (
    "accuracy", "precision", "recall", "f1", "auc", "f0_5", "f2",
    "true_positive_rate", "true_negative_rate", "false_positive_rate", "false_negative_rate",
    "accuracy_best_constant_classifier", "precision_best_constant_classifier",
    "recall_best_constant_classifier", "f0_5_best_constant_classifier",
    "f1_best_constant_classifier", "f2_best_constant_classifier",
)
MODEL_MONITOR_REGRESSION_METRICS = ("mae", "mse", "rmse", "r2")

#: Model Monitor's standard deviation: from this many matched records on, over
#: ``SUBSAMPLE_ROUNDS`` random subsamples of ``SUBSAMPLE_FRACTION`` of them.
MIN_ITEMS_FOR_STD = 200
SUBSAMPLE_ROUNDS = 5
SUBSAMPLE_FRACTION = 0.8
#: Points kept of the ROC and precision-recall curves.
CURVE_POINTS = 101

_CHUNK = 256  # bootstrap rows computed at once (memory: _CHUNK x n floats)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def _f_beta(p: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    return _div((1 + b2) * p * r, b2 * p + r)


def _cells(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Each record's confusion-matrix cell: 3 true positive, 1 false positive, 2 false negative, 0 else."""
    y1, p1 = y == 1, pred == 1
    return np.where(p1, np.where(y1, 3, np.where(y == 0, 1, 0)), np.where(y1 & (pred == 0), 2, 0)).astype(np.intp)


def _row_counts(values: np.ndarray, idx: np.ndarray | None, size: int) -> np.ndarray:
    """How often each value in ``0 .. size-1`` occurs in each row of ``values[idx]`` (one row when
    ``idx`` is None; ``values`` None stands for ``arange(size)``): an (rows, size) int64 array, one
    ``bincount`` for all rows."""
    if idx is None:
        return np.bincount(values, minlength=size)[None, :]
    picked = idx if values is None else values[idx]
    flat = (picked + (np.arange(idx.shape[0]) * size)[:, None]).ravel()
    return np.bincount(flat, minlength=size * idx.shape[0]).reshape(idx.shape[0], size)


class _Ranked:
    """The scores sorted once (for AUC of every row and for the curves): ``order`` sorts them
    ascending, ``starts`` are the first positions of each group of tied scores in that order."""

    def __init__(self, prob: np.ndarray) -> None:
        self.order = np.argsort(prob)
        ranked = prob[self.order]
        self.starts = np.flatnonzero(np.concatenate(([True], ranked[1:] != ranked[:-1])))
        self.thresholds = ranked[self.starts]


def _ranked(prob: np.ndarray | None) -> _Ranked | None:
    """None when there are no scores or one of them is NaN (AUC and the curves are then undefined)."""
    return None if prob is None or np.isnan(prob).any() else _Ranked(prob)


def _tie_groups(y: np.ndarray, ranked: _Ranked, idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives) per group of tied scores (ascending) and row, each record weighted by
    how often the row holds it (once, when ``idx`` is None)."""
    positive = y[ranked.order] == 1
    if idx is None:
        pos_g = np.add.reduceat(positive.astype(np.int64), ranked.starts)[None, :]
        size = np.diff(np.append(ranked.starts, len(y)))[None, :]
        return pos_g, size - pos_g
    weight = _row_counts(None, idx, len(y))[:, ranked.order]
    pos_g = np.add.reduceat(weight * positive, ranked.starts, axis=1)
    return pos_g, np.add.reduceat(weight, ranked.starts, axis=1) - pos_g


def _auc_rows(y: np.ndarray, ranked: _Ranked, idx: np.ndarray | None) -> np.ndarray:
    """AUC of each row: the Mann-Whitney statistic with ties counted half, exactly.

    One sort of all scores; a row (a resample, with repeats, or a subsample)
    weighs each record by how often it holds it. Per group of tied scores g
    with P_g positive and N_g negative records (weighted),
    ``2U = sum_g P_g (2 N_below_g + N_g)``, integers, so ``U / (P N)`` is the
    correctly rounded AUC - the value of average ranks, and of scikit-learn's
    ``roc_auc_score`` up to its last bit.
    """
    pos_g, neg_g = _tie_groups(y, ranked, idx)
    below = np.cumsum(neg_g, axis=1) - neg_g
    twice_u = (pos_g * (2 * below + neg_g)).sum(axis=1)
    pos, neg = pos_g.sum(axis=1), neg_g.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((pos > 0) & (neg > 0), twice_u / (2 * pos * neg), np.nan)


def _binary_rows(arrays: list[np.ndarray | None], idx: np.ndarray | None,
                 names=BINARY_METRICS) -> dict[str, np.ndarray]:
    """Metrics of each row (the whole arrays when ``idx`` is None, else the records ``idx[r]`` of row
    ``r``); AUC only when in ``names``."""
    y, pred, ranked = arrays
    n = len(y) if idx is None else idx.shape[1]
    tn, fp, fn, tp = _row_counts(_cells(y, pred), idx, 4).T
    pos = tp + fn
    neg = n - pos
    precision, recall = _div(tp, tp + fp), _div(tp, pos)
    base = pos / n  # positive rate = precision (and accuracy) of always predicting 1
    always = np.where(pos > 0, np.ones_like(base), 0.0)  # recall of always predicting 1
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
        "accuracy_best_constant_classifier": base,
        "precision_best_constant_classifier": base,
        "recall_best_constant_classifier": always,
        "f0_5_best_constant_classifier": _f_beta(base, always, 0.5),
        "f1_best_constant_classifier": _f_beta(base, always, 1.0),
        "f2_best_constant_classifier": _f_beta(base, always, 2.0),
    }
    if "auc" in names:
        out["auc"] = np.full(len(tp), np.nan) if ranked is None else _auc_rows(y, ranked, idx)
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.sum(a * b, axis=1) / den, np.nan)


def _regression_rows(arrays: list[np.ndarray], idx: np.ndarray | None,
                     names=REGRESSION_METRICS) -> dict[str, np.ndarray]:
    """Metrics of each row (as :func:`_binary_rows`); the correlations only when in ``names``."""
    y, pred = (a[None, :] if idx is None else a[idx] for a in arrays)
    err = pred - y
    mse = np.mean(err * err, axis=1)
    ss_tot = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1 - np.sum(err * err, axis=1) / ss_tot, np.nan)
    out = {"mae": np.mean(np.abs(err), axis=1), "mse": mse, "rmse": np.sqrt(mse), "r2": r2}
    if "pearson" in names:
        out["pearson"] = _corr(y, pred)
    if "spearman" in names:
        from scipy.stats import rankdata

        out["spearman"] = _corr(rankdata(y, axis=1), rankdata(pred, axis=1))
    return out


def _number(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _rows(rows_fn, arrays: list[np.ndarray | None], idx, names) -> dict[str, np.ndarray]:
    """``rows_fn`` on the rows of ``arrays`` picked by ``idx`` (None: the whole arrays, one row)."""
    return rows_fn(arrays, idx, names=names)


def _with_bootstrap(rows_fn, arrays: list[np.ndarray | None], names, n_bootstrap: int,
                    random_state: int) -> dict[str, dict]:
    n = len(arrays[0])
    point = _rows(rows_fn, arrays, None, names)
    replicates: dict[str, list[np.ndarray]] = {k: [] for k in names}
    if n_bootstrap > 0 and n > 0:
        rng = np.random.default_rng(random_state)
        done = 0
        while done < n_bootstrap:
            size = min(_CHUNK, n_bootstrap - done)
            idx = rng.integers(0, n, size=(size, n))
            values = _rows(rows_fn, arrays, idx, names)
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


def _with_subsamples(rows_fn, arrays: list[np.ndarray | None], names, seed: int) -> dict[str, dict]:
    """Model Monitor's form: each metric ``{value, standard_deviation}``, ``"NaN"`` when undefined.

    The deviation is ``np.std`` of the metric over ``SUBSAMPLE_ROUNDS``
    subsamples of ``int(n * SUBSAMPLE_FRACTION)`` rows without replacement
    (``default_rng(seed).choice``, one round after the other), when there are
    at least ``MIN_ITEMS_FOR_STD`` rows and every round's value is defined.
    """
    n = len(arrays[0])
    point = _rows(rows_fn, arrays, None, names)
    std = {k: math.nan for k in names}
    if n >= MIN_ITEMS_FOR_STD:
        rng = np.random.default_rng(seed)
        size = int(n * SUBSAMPLE_FRACTION)
        idx = np.stack([rng.choice(n, size=size, replace=False) for _ in range(SUBSAMPLE_ROUNDS)])
        rounds = _rows(rows_fn, arrays, idx, names)
        for k in names:
            std[k] = float(np.std(rounds[k])) if np.isfinite(rounds[k]).all() else math.nan
    return {k: {"value": _nan_string(point[k][0]), "standard_deviation": _nan_string(std[k])} for k in names}


def _nan_string(value) -> float | str:
    """Model Monitor writes an undefined number as the string ``"NaN"`` (strict JSON)."""
    value = float(value)
    return value if math.isfinite(value) else "NaN"


def _confusion_matrix(y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, int]]:
    """``{actual: {predicted: count}}`` with labels ``"0"``/``"1"``."""
    return {a: {p: int(np.count_nonzero((y == int(a)) & (pred == int(p)))) for p in ("0", "1")} for a in ("0", "1")}


def _curves(y: np.ndarray, ranked: _Ranked) -> dict[str, dict[str, list[float]]]:
    """The ROC and precision-recall curves, at most ``CURVE_POINTS`` points each.

    Exactly scikit-learn's ``roc_curve`` (``drop_intermediate=True``) and
    ``precision_recall_curve`` (1.9.0, ``_ranking.py``), from the sort AUC
    made: per distinct score, from the highest down, the records at or above
    it that are positive (tps) and negative (fps), as float64 integers; the
    ROC keeps a point only where the curve bends, after a (0, 0) start;
    precision ``tps / (tps + fps)`` and recall ``tps / P`` are reversed, then
    1 and 0 appended. Both classes must be present.
    (tests/processing_scripts/test_model_metrics.py compares them with scikit-learn's.)
    """
    pos_g, neg_g = (g[0, ::-1] for g in _tie_groups(y, ranked, None))
    tps = np.cumsum(pos_g).astype(np.float64)
    fps = np.cumsum(neg_g).astype(np.float64)
    roc_fps, roc_tps = fps, tps
    if len(fps) > 2:
        keep = np.flatnonzero(np.concatenate(([True], np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), [True])))
        roc_fps, roc_tps = fps[keep], tps[keep]
    roc_fps = np.concatenate(([0.0], roc_fps))
    roc_tps = np.concatenate(([0.0], roc_tps))
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return {
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": _thin(roc_fps / roc_fps[-1]), "true_positive_rates": _thin(roc_tps / roc_tps[-1])},
        "precision_recall_curve": {
            "precisions": _thin(np.concatenate((precision[::-1], [1.0]))),
            "recalls": _thin(np.concatenate((recall[::-1], [0.0])))},
    }


def _binary_arrays(y_true, y_pred, y_prob) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    y = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    prob = None if y_prob is None else np.asarray(y_prob, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no rows to compute metrics on")
    return y, pred, prob


def _regression_arrays(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no rows to compute metrics on")
    return y, pred


def _has_curves(y: np.ndarray, ranked: _Ranked | None) -> bool:
    return ranked is not None and 0 < y.sum() < len(y)


def binary_classification_metrics(y_true, y_pred, y_prob=None, *, n_bootstrap: int = 1000,
                                  random_state: int = 0, curves: bool = False) -> dict:
    """``binary_classification_metrics`` block: confusion matrix and every metric with its deviation.

    ``y_true``/``y_pred`` are 0/1, ``y_prob`` the probability of class 1 (for
    AUC and the curves; omit it and ``auc`` is null). ``curves`` adds the ROC
    and precision-recall curves (at most 101 points each).
    """
    y, pred, prob = _binary_arrays(y_true, y_pred, y_prob)
    block: dict = {"confusion_matrix": _confusion_matrix(y, pred)}
    ranked = _ranked(prob)
    block.update(_with_bootstrap(_binary_rows, [y, pred, ranked], BINARY_METRICS, n_bootstrap, random_state))
    if curves and _has_curves(y, ranked):
        block.update(_curves(y, ranked))
    return block


def regression_metrics(y_true, y_pred, *, n_bootstrap: int = 1000, random_state: int = 0) -> dict:
    """``regression_metrics`` block: every metric with its bootstrap deviation."""
    y, pred = _regression_arrays(y_true, y_pred)
    return _with_bootstrap(_regression_rows, [y, pred], REGRESSION_METRICS, n_bootstrap, random_state)


def model_monitor_binary_metrics(y_true, y_pred, y_prob=None, *, seed: int = 0) -> dict:
    """Model Monitor's ``binary_classification_metrics`` block of statistics.json.

    The confusion matrix, :data:`MODEL_MONITOR_BINARY_METRICS` in that order
    (subsample deviations, ``"NaN"`` when undefined), then the ROC and
    precision-recall curves when AUC is defined. ``y_prob`` None (or holding
    a NaN): no AUC, no curves.
    """
    y, pred, prob = _binary_arrays(y_true, y_pred, y_prob)
    block: dict = {"confusion_matrix": _confusion_matrix(y, pred)}
    ranked = _ranked(prob)
    block.update(_with_subsamples(_binary_rows, [y, pred, ranked], MODEL_MONITOR_BINARY_METRICS, seed))
    if _has_curves(y, ranked):
        block.update(_curves(y, ranked))
    return block


def model_monitor_regression_metrics(y_true, y_pred, *, seed: int = 0) -> dict:
    """Model Monitor's ``regression_metrics`` block of statistics.json (mae, mse, rmse, r2)."""
    y, pred = _regression_arrays(y_true, y_pred)
    return _with_subsamples(_regression_rows, [y, pred], MODEL_MONITOR_REGRESSION_METRICS, seed)


def _thin(values: np.ndarray, points: int = CURVE_POINTS) -> list[float]:
    if len(values) > points:
        values = values[np.linspace(0, len(values) - 1, points).round().astype(int)]
    return [round(float(v), 6) for v in values]
