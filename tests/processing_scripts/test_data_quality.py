"""data_quality: Model Monitor's data-quality statistics, constraints and checks; the distance is Deequ's.

The distance follows awslabs/deequ ``src/main/scala/com/amazon/deequ/analyzers/Distance.scala``
(commit 06df31486e6e608acf065e4ce1bb8d32bb7b177b): ``numericalDistance`` takes the largest absolute
difference of the two sketches' CDFs over the union of their items (``QuantileNonSample.getRankMap``:
inclusive ranks, items of level h weigh 2**h), ``selectMetrics`` subtracts ``1.8 * sqrt((n+m)/(n*m))``
for the robust distance (floored at 0). The file formats follow the AWS docs' schemas for
statistics.json, constraints.json and constraint_violations.json (Model Monitor).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import data_quality as dq
from stscontracts import documents


def _stats(values, name="x", kind="Fractional"):
    return dq.feature_statistics(name, kind, np.asarray(values, dtype=float))


def test_feature_statistics_has_model_monitors_shape():
    stats = _stats([1.0, 2.0, np.nan, 4.0])
    numeric = stats["numerical_statistics"]
    assert numeric["common"] == {"num_present": 3, "num_missing": 1}
    assert (numeric["mean"], numeric["sum"], numeric["min"], numeric["max"]) == (pytest.approx(7 / 3), 7.0, 1.0, 4.0)
    kll = numeric["distribution"]["kll"]
    assert len(kll["buckets"]) == dq.BUCKETS and sum(b["count"] for b in kll["buckets"]) == 3
    assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert kll["sketch"]["data"] == [[1.0, 2.0, 4.0]]
    assert _stats([np.nan, np.nan])["numerical_statistics"] == {"common": {"num_present": 0, "num_missing": 2}}


def test_a_compacted_sketch_keeps_the_count_and_ranks_close():
    values = np.random.default_rng(1).normal(size=10_001)
    data = dq.sketch_levels(values)
    assert sum(len(level) for level in data) <= dq.KLL_K
    assert sum(len(level) << h for h, level in enumerate(data)) == len(values)
    items, ranks = dq.sketch_items({"data": data})
    exact = np.searchsorted(np.sort(values), items, side="right")
    step = 1 << (len(data) - 1)
    assert np.max(np.abs(ranks - exact)) <= step


def _linf_by_hand(a, b):
    """The two-sample KS statistic from sorted samples (what Deequ computes on exact sketches)."""
    keys = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), keys, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), keys, side="right") / len(b)
    return np.max(np.abs(fa - fb))


def test_linf_distance_is_deequs_and_robust_subtracts_the_ks_critical_value():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(0.5, 1, size=200)
    simple, n, m = dq.linf_distance(_stats(a)["numerical_statistics"]["distribution"]["kll"]["sketch"],
                                    _stats(b)["numerical_statistics"]["distribution"]["kll"]["sketch"])
    assert (n, m) == (300, 200)
    assert simple == pytest.approx(_linf_by_hand(a, b))
    assert dq.robust(simple, n, m) == pytest.approx(max(0.0, simple - 1.8 * math.sqrt(500 / 60000)))
    assert dq.robust(0.01, 300, 200) == 0.0
    # ties (a 0/1 feature): the distance is the difference of the positive rates
    zeros_ones = dq.linf_distance({"data": [[0.0] * 70 + [1.0] * 30]}, {"data": [[0.0] * 40 + [1.0] * 60]})[0]
    assert zeros_ones == pytest.approx(0.3)


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    base = _stats(np.linspace(0, 1, 500))["numerical_statistics"]["distribution"]["kll"]
    same = _stats(np.linspace(0, 1, 250))["numerical_statistics"]["distribution"]["kll"]
    shifted = _stats(np.linspace(0.5, 1.5, 250))["numerical_statistics"]["distribution"]["kll"]
    assert dq.psi(base["buckets"], same["sketch"]) < 0.01
    assert dq.psi(base["buckets"], shifted["sketch"]) > 1.0


def _window(columns):
    stats = dq.dataset_statistics([(n, k, v) for n, (k, v) in columns.items()], 100)
    return stats, {n: v for n, (_, v) in columns.items()}


def test_check_finds_each_kind_of_violation():
    rng = np.random.default_rng(0)
    base_columns = {"length": ("Integral", rng.integers(5, 30, 500).astype(float)),
                    "overlap": ("Fractional", rng.uniform(0, 1, 500)),
                    "score": ("Fractional", rng.uniform(0, 1, 500))}
    baseline, _ = _window(base_columns)
    constraints = dq.suggest_constraints(baseline, comparison_threshold=0.1)
    assert [f["completeness"] for f in constraints["features"]] == [1.0, 1.0, 1.0]
    assert constraints["monitoring_config"]["distribution_constraints"] == {
        "perform_comparison": "Enabled", "comparison_threshold": 0.1, "comparison_method": "Robust"}

    same, values = _window({"length": ("Integral", rng.integers(5, 30, 400).astype(float)),
                            "overlap": ("Fractional", rng.uniform(0, 1, 400)),
                            "score": ("Fractional", rng.uniform(0, 1, 400))})
    violations, results = dq.check(constraints, baseline, same, values)
    assert violations == [] and [r["status"] for r in results] == ["OK"] * 3

    length = rng.integers(5, 30, 400).astype(float)
    length[:8] = np.nan  # 2 % missing
    length[8:20] += 0.5  # not Integral
    window, values = _window({"length": ("Integral", length),
                              "overlap": ("Fractional", rng.uniform(0.6, 1, 400))})  # drifted; score missing
    violations, results = dq.check(constraints, baseline, window, values)
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
    assert kinds == {("length", "completeness_check"), ("length", "data_type_check"),
                     ("overlap", "baseline_drift_check"), ("score", "missing_column_check")}
    documents.validate({"violations": violations}, documents.DATA_QUALITY_VIOLATIONS)
    documents.validate(window, documents.DATA_QUALITY_STATISTICS)
    documents.validate(constraints, documents.DATA_QUALITY_CONSTRAINTS)
    drift = next(r for r in results if r["feature"] == "overlap")
    assert drift["distance"] == pytest.approx(drift["linf_robust"]) and drift["distance"] > 0.1
    assert next(v for v in violations if v["constraint_check_type"] == "baseline_drift_check")["description"] \
        .startswith("Baseline drift distance: ")


def test_simple_compares_the_raw_distance_and_disabled_comparison_never_drifts():
    rng = np.random.default_rng(5)
    baseline, _ = _window({"x": ("Fractional", rng.uniform(0, 1, 200))})
    window, values = _window({"x": ("Fractional", rng.uniform(0.1, 1.1, 50))})
    simple = dq.suggest_constraints(baseline, comparison_threshold=0.1, comparison_method="Simple")
    robust = dq.suggest_constraints(baseline, comparison_threshold=0.1, comparison_method="Robust")
    assert [v["constraint_check_type"] for v in dq.check(simple, baseline, window, values)[0]] == ["baseline_drift_check"]
    assert dq.check(robust, baseline, window, values)[0] == []  # 50 items: within the sampling noise
    simple["monitoring_config"]["distribution_constraints"]["perform_comparison"] = "Disabled"
    assert dq.check(simple, baseline, window, values)[0] == []


def test_bad_constraints_are_named():
    with pytest.raises(dq.DataQualityError) as info:
        dq.validate_constraints({"features": [{"name": "x", "inferred_type": "Text", "completeness": 2}],
                                 "monitoring_config": {"distribution_constraints": {"comparison_method": "Fancy",
                                                                                    "comparison_threshold": -1}}},
                                "constraints.json")
    message = str(info.value)
    for part in ("constraints.json", "inferred_type 'Text'", "completeness 2", "'Fancy'", "-1"):
        assert part in message


def test_the_check_types_are_the_schemas():
    enum = documents.schema(documents.DATA_QUALITY_VIOLATIONS)["$defs"]["violation"]["properties"]
    assert set(dq.CHECK_TYPES) <= set(enum["constraint_check_type"]["enum"])
