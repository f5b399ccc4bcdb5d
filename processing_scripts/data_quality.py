"""Model Monitor's data-quality files and checks: ``statistics.json``, ``constraints.json``, the
distance between a window's distributions and the baseline's, and ``constraint_violations.json``.

Formats (AWS docs, SageMaker Model Monitor: "Schema for Statistics (statistics.json
file)", "Schema for Constraints (constraints.json file)", "Schema for Violations
(constraint_violations.json file)"):

- statistics: ``{"version", "dataset": {"item_count"}, "features": [{"name",
  "inferred_type", "numerical_statistics": {"common": {"num_present",
  "num_missing"}, "mean", "sum", "std_dev", "min", "max", "distribution":
  {"kll": {"buckets": [{"lower_bound", "upper_bound", "count"}] (10, equal
  width between min and max), "sketch": {"parameters": {"c", "k"}, "data":
  [[level 0 items], [level 1 items], ...]}}}}}]}``;
- constraints: ``{"version", "features": [{"name", "inferred_type",
  "completeness", "num_constraints": {"is_non_negative"}}], "monitoring_config":
  {"evaluate_constraints", "emit_metrics", "datatype_check_threshold",
  "domain_content_threshold", "distribution_constraints": {"perform_comparison",
  "comparison_threshold", "comparison_method"}}}``;
- violations: ``{"violations": [{"feature_name", "constraint_check_type",
  "description"}]}`` with the check types ``data_type_check``,
  ``completeness_check``, ``baseline_drift_check`` and ``missing_column_check``.

The distance (``baseline_drift_check``) is Deequ's, the library Model Monitor's
analyzer is built on (awslabs/deequ ``analyzers/Distance.scala``,
``numericalDistance`` and ``selectMetrics``, commit 06df314): the L-infinity
distance between the two cumulative distributions read from the KLL sketches
(each item of level ``h`` weighs ``2**h``; ``QuantileNonSample.getRankMap``),

    linf_simple = max over every sketch item x of |F_baseline(x) - F_window(x)|
    linf_robust = max(0, linf_simple - c_alpha * sqrt((n + m) / (n * m)))

with ``n``, ``m`` the two sketches' total weights and ``c_alpha`` = 1.8
(alpha = 0.003; the two-sample Kolmogorov-Smirnov critical value): "Simple"
compares ``linf_simple``, "Robust" ``linf_robust`` with ``comparison_threshold``.
Robust subtracts what sampling alone gives a window of ``m`` items, so a small
window does not alarm on noise.

The population stability index of the baseline's 10 buckets (Deequ's
``populationStabilityIndex``: the sum of (p - q) ln(p / q)) is reported beside
it; empty buckets count as 0.5 items so the index stays finite.

A sketch here holds every value when there are at most ``KLL_K`` of them (a KLL
sketch that never compacted); above that the sorted values are compacted
deterministically to one level of weight ``2**h`` (plus the remainder at level 0,
so the weights add up to the count exactly). The ranks it gives are within
``2**h`` of the exact ones.

numpy only (the monitor imports neither scipy nor scikit-learn).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

try:  # imported as processing_scripts.<module> (tests, local runtime)
    from . import pair_features
except ImportError:  # run next to its sibling modules (SageMaker)
    import pair_features  # type: ignore[no-redef]

#: Deequ's KLL defaults (sketch size, shrinking factor).
KLL_K = 2048
KLL_C = 0.64
#: Model Monitor materializes the distribution in 10 buckets ("not currently configurable").
BUCKETS = 10
#: Deequ's default c(alpha) (alpha = 0.003).
C_ALPHA = 1.8
METHODS = ("Robust", "Simple")
INFERRED_TYPES = ("Integral", "Fractional")

CHECK_DATA_TYPE = "data_type_check"
CHECK_COMPLETENESS = "completeness_check"
CHECK_DRIFT = "baseline_drift_check"
CHECK_MISSING_COLUMN = "missing_column_check"
CHECK_TYPES = (CHECK_DATA_TYPE, CHECK_COMPLETENESS, CHECK_DRIFT, CHECK_MISSING_COLUMN)


class DataQualityError(ValueError):
    """A statistics or constraints document that cannot be used: the message names the file and the problem."""


# --------------------------------------------------------------------------- the columns


def feature_columns(pairs: list[tuple[str, str] | None], problem_type: str, *, vocabulary=None,
                    probability: np.ndarray | None = None, label: np.ndarray | None = None,
                    score: np.ndarray | None = None) -> list[tuple[str, str, np.ndarray]]:
    """``(name, inferred_type, values)`` of every watched feature (pair_features.features) of a set of rows.

    ``pairs[i]`` is None where the row's request could not be read (its pair features are missing);
    the prediction's columns come from the arrays given (NaN = missing).
    """
    width = len(pair_features.PAIR_FEATURES)
    table = np.full((len(pairs), width), np.nan)
    for i, pair in enumerate(pairs):
        if pair is not None:
            table[i] = pair_features.pair_row(pair[0], pair[1], vocabulary)
    columns = [(name, kind, table[:, j]) for j, (name, kind) in enumerate(pair_features.PAIR_FEATURES)]
    given = {"probability": probability, "predicted_label": label, "score": score}
    for name, kind in pair_features.PREDICTION_FEATURES[problem_type]:
        values = given[name]
        columns.append((name, kind, np.full(len(pairs), np.nan) if values is None else np.asarray(values, float)))
    return columns


# --------------------------------------------------------------------------- statistics


def _num(value: float) -> float:
    return float(round(float(value), 10))


def sketch_levels(values: np.ndarray) -> list[list[float]]:
    """A KLL-shaped sketch of ``values`` (see the module docstring): ``data`` of statistics.json."""
    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    if n <= KLL_K:
        return [[_num(v) for v in ordered]]
    height = 1
    while n // (1 << height) + (n % (1 << height)) > KLL_K:
        height += 1
    step = 1 << height
    kept = n // step
    level = ordered[step - 1: kept * step: step]  # the last item of each block of 2**h
    rest = ordered[kept * step:]
    levels: list[list[float]] = [[_num(v) for v in rest]] + [[] for _ in range(height - 1)]
    levels.append([_num(v) for v in level])
    return levels


def sketch_items(sketch: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct items, inclusive rank of each): Deequ's ``getRankMap`` of a statistics.json sketch."""
    values, weights = [], []
    for height, level in enumerate(sketch.get("data") or []):
        values.extend(level)
        weights.extend([1 << height] * len(level))
    if not values:
        return np.zeros(0), np.zeros(0)
    items = np.asarray(values, dtype=float)
    order = np.argsort(items, kind="stable")
    items, ranks = items[order], np.cumsum(np.asarray(weights, dtype=float)[order])
    last = np.r_[items[1:] != items[:-1], True]  # one rank per distinct item: the largest
    return items[last], ranks[last]


def _buckets(values: np.ndarray, low: float, high: float) -> list[dict[str, float]]:
    if high <= low:
        return [{"lower_bound": _num(low), "upper_bound": _num(high), "count": float(len(values))}]
    edges = np.linspace(low, high, BUCKETS + 1)
    counts, _ = np.histogram(values, bins=edges)
    return [{"lower_bound": _num(edges[i]), "upper_bound": _num(edges[i + 1]), "count": float(counts[i])}
            for i in range(BUCKETS)]


def feature_statistics(name: str, inferred_type: str, values: np.ndarray) -> dict[str, Any]:
    """One feature's entry of statistics.json; ``values`` holds NaN where the feature is missing."""
    values = np.asarray(values, dtype=float)
    present = values[np.isfinite(values)]
    stats: dict[str, Any] = {"common": {"num_present": int(len(present)), "num_missing": int(len(values) - len(present))}}
    if len(present):
        low, high = float(present.min()), float(present.max())
        stats.update(
            mean=_num(present.mean()), sum=_num(present.sum()), std_dev=_num(present.std()), min=_num(low), max=_num(high),
            distribution={"kll": {"buckets": _buckets(present, low, high),
                                  "sketch": {"parameters": {"c": KLL_C, "k": float(KLL_K)},
                                             "data": sketch_levels(present)}}},
        )
    return {"name": name, "inferred_type": inferred_type, "numerical_statistics": stats}


def dataset_statistics(columns: Iterable[tuple[str, str, np.ndarray]], item_count: int) -> dict[str, Any]:
    """statistics.json's content from ``(name, inferred_type, values)`` columns."""
    return {"version": 0.0, "dataset": {"item_count": int(item_count)},
            "features": [feature_statistics(name, kind, values) for name, kind, values in columns]}


def suggest_constraints(statistics: Mapping[str, Any], *, comparison_threshold: float,
                        comparison_method: str = "Robust") -> dict[str, Any]:
    """constraints.json for a baseline's statistics, as Model Monitor's baselining job suggests them:
    each feature's type and observed completeness, non-negativity where every value was >= 0, and
    the distribution comparison on every feature."""
    if comparison_method not in METHODS:
        raise DataQualityError(f"comparison method {comparison_method!r} is not one of {', '.join(METHODS)}")
    if not comparison_threshold >= 0:
        raise DataQualityError(f"comparison threshold must be >= 0, got {comparison_threshold}")
    features = []
    for feature in statistics["features"]:
        numeric = feature["numerical_statistics"]
        common = numeric["common"]
        rows = common["num_present"] + common["num_missing"]
        entry: dict[str, Any] = {"name": feature["name"], "inferred_type": feature["inferred_type"],
                                 "completeness": _num(common["num_present"] / rows) if rows else 1.0}
        if "min" in numeric:
            entry["num_constraints"] = {"is_non_negative": bool(numeric["min"] >= 0)}
        features.append(entry)
    return {
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": float(comparison_threshold),
                "comparison_method": comparison_method,
            },
        },
    }


# --------------------------------------------------------------------------- distances


def linf_distance(baseline_sketch: Mapping[str, Any], sketch: Mapping[str, Any]) -> tuple[float, float, float]:
    """(linf_simple, n, m) between two statistics.json sketches (Deequ's ``numericalDistance``)."""
    items1, ranks1 = sketch_items(baseline_sketch)
    items2, ranks2 = sketch_items(sketch)
    if not len(items1) or not len(items2):
        return math.nan, float(ranks1[-1]) if len(ranks1) else 0.0, float(ranks2[-1]) if len(ranks2) else 0.0
    n, m = float(ranks1[-1]), float(ranks2[-1])
    keys = np.union1d(items1, items2)

    def cdf(items: np.ndarray, ranks: np.ndarray, total: float) -> np.ndarray:
        at = np.searchsorted(items, keys, side="right") - 1  # the largest item <= key
        return np.where(at >= 0, ranks[np.maximum(at, 0)], 0.0) / total

    return float(np.max(np.abs(cdf(items1, ranks1, n) - cdf(items2, ranks2, m)))), n, m


def robust(linf_simple: float, n: float, m: float, c_alpha: float = C_ALPHA) -> float:
    """Deequ's ``linf_robust``: the simple distance less the KS critical value of samples of n and m."""
    if not (n > 0 and m > 0) or not math.isfinite(linf_simple):
        return math.nan
    return max(0.0, linf_simple - c_alpha * math.sqrt((n + m) / (n * m)))


def psi(baseline_buckets: list[Mapping[str, float]], sketch: Mapping[str, Any]) -> float:
    """Population stability index of a window's sketch on the baseline's buckets (values outside the
    baseline's range count in its first or last bucket; empty buckets as 0.5 items)."""
    if len(baseline_buckets) < 2:
        return math.nan
    items, ranks = sketch_items(sketch)
    if not len(items):
        return math.nan
    weights = np.diff(np.r_[0.0, ranks])
    inner = np.asarray([b["upper_bound"] for b in baseline_buckets[:-1]], dtype=float)
    index = np.searchsorted(inner, items, side="left")  # upper bounds are inclusive, as np.histogram's last
    actual = np.bincount(index, weights=weights, minlength=len(baseline_buckets))
    expected = np.asarray([b["count"] for b in baseline_buckets], dtype=float)
    p = (actual + 0.5) / (actual.sum() + 0.5 * len(actual))
    q = (expected + 0.5) / (expected.sum() + 0.5 * len(expected))
    return float(np.sum((p - q) * np.log(p / q)))


# --------------------------------------------------------------------------- the check


def _features_by_name(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f["name"]: f for f in doc.get("features", [])}


def _is_integral(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (np.floor(values) == values)


def check(constraints: Mapping[str, Any], baseline: Mapping[str, Any], current: Mapping[str, Any],
          columns: Mapping[str, np.ndarray]) -> tuple[list[dict], list[dict]]:
    """(violations, per-feature results) of a window against the baseline.

    ``current`` is the window's statistics.json content, ``columns`` its raw values
    (feature name -> array with NaN where missing; a feature absent from ``columns``
    is a missing column). Per feature: completeness, share of values of the baseline's
    type, both distances, PSI, and the status of each check.
    """
    config = constraints.get("monitoring_config") or {}
    if config.get("evaluate_constraints", "Enabled") != "Enabled":
        return [], []
    drift_config = config.get("distribution_constraints") or {}
    compare = drift_config.get("perform_comparison", "Enabled") == "Enabled"
    threshold = float(drift_config.get("comparison_threshold", 0.1))
    method = drift_config.get("comparison_method", "Robust")
    type_threshold = float(config.get("datatype_check_threshold", 1.0))
    base_stats = _features_by_name(baseline)
    window_stats = _features_by_name(current)
    violations: list[dict] = []
    results: list[dict] = []
    for constraint in constraints.get("features", []):
        name = constraint["name"]
        result: dict[str, Any] = {"feature": name, "inferred_type": constraint.get("inferred_type")}
        results.append(result)
        if name not in columns or name not in window_stats:
            result["status"] = "MissingColumn"
            violations.append({"feature_name": name, "constraint_check_type": CHECK_MISSING_COLUMN,
                               "description": f"There is a missing column in the dataset: {name} is in the baseline "
                                              "constraints but not in the analysed data"})
            continue
        values = np.asarray(columns[name], dtype=float)
        common = window_stats[name]["numerical_statistics"]["common"]
        rows = common["num_present"] + common["num_missing"]
        completeness = common["num_present"] / rows if rows else math.nan
        result["completeness"] = completeness
        expected_completeness = float(constraint.get("completeness", 1.0))
        if rows and completeness < expected_completeness:
            violations.append({"feature_name": name, "constraint_check_type": CHECK_COMPLETENESS,
                               "description": f"Data completeness requirement is not met. Expected: "
                                              f"{expected_completeness:.1%} non-null. Observed: only "
                                              f"{completeness:.1%} of {rows} items are present."})
        present = values[np.isfinite(values)]
        if constraint.get("inferred_type") == "Integral" and len(present):
            conforming = float(np.mean(_is_integral(present)))
            result["type_match"] = conforming
            if conforming < type_threshold:
                violations.append({"feature_name": name, "constraint_check_type": CHECK_DATA_TYPE,
                                   "description": f"Data type match requirement is not met. Expected data type: "
                                                  f"Integral, expected match: {type_threshold:.1%}. Observed: only "
                                                  f"{conforming:.1%} of the data is Integral."})
        base = base_stats.get(name, {}).get("numerical_statistics", {})
        window = window_stats[name]["numerical_statistics"]
        base_kll = (base.get("distribution") or {}).get("kll") or {}
        window_kll = (window.get("distribution") or {}).get("kll") or {}
        if base_kll and window_kll:
            simple, n, m = linf_distance(base_kll["sketch"], window_kll["sketch"])
            distance = robust(simple, n, m) if method == "Robust" else simple
            result.update(linf_simple=simple, linf_robust=robust(simple, n, m), distance=distance, method=method,
                          threshold=threshold, psi=psi(base_kll["buckets"], window_kll["sketch"]))
            if compare and math.isfinite(distance) and distance > threshold:
                violations.append({"feature_name": name, "constraint_check_type": CHECK_DRIFT,
                                   "description": f"Baseline drift distance: {distance:.4g} exceeds threshold: "
                                                  f"{threshold:g} ({method})"})
        bad = {v["constraint_check_type"] for v in violations if v["feature_name"] == name}
        result["status"] = "Violation" if bad else "OK"
        result["violations"] = sorted(bad)
    return violations, results


def validate_constraints(doc: Any, where: str) -> None:
    """The parts of a data-quality constraints.json the check reads: DataQualityError naming each problem."""
    problems = []
    if not isinstance(doc, dict):
        raise DataQualityError(f"{where}: expected a JSON object")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        problems.append("'features' must be a non-empty list")
    else:
        for i, feature in enumerate(features):
            if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
                problems.append(f"features[{i}] needs a 'name'")
                continue
            if feature.get("inferred_type") not in INFERRED_TYPES:
                problems.append(f"features[{i}] ({feature['name']}): inferred_type {feature.get('inferred_type')!r} "
                                f"is not one of {', '.join(INFERRED_TYPES)}")
            completeness = feature.get("completeness", 1.0)
            if isinstance(completeness, bool) or not isinstance(completeness, (int, float)) or not 0 <= completeness <= 1:
                problems.append(f"features[{i}] ({feature['name']}): completeness {completeness!r} is not in [0, 1]")
    drift = ((doc.get("monitoring_config") or {}).get("distribution_constraints") or {})
    method = drift.get("comparison_method", "Robust")
    if method not in METHODS:
        problems.append(f"monitoring_config.distribution_constraints.comparison_method {method!r} is not one of "
                        f"{', '.join(METHODS)}")
    threshold = drift.get("comparison_threshold", 0.1)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
        problems.append(f"monitoring_config.distribution_constraints.comparison_threshold {threshold!r} is not a "
                        "number >= 0")
    if problems:
        raise DataQualityError(f"{where}: " + "; ".join(problems))
