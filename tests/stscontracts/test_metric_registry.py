"""The metric registry: one row per metric, and what follows from its direction."""

from __future__ import annotations

import pytest

from processing_scripts import model_metrics
from stscontracts import metrics, names
from stscontracts.config import load_config


def test_every_problem_type_has_gate_constrained_and_monitored_metrics_that_nest():
    for problem_type in names.PROBLEM_TYPES:
        gate = set(metrics.gate_metrics(problem_type))
        constrained = set(metrics.constrained_metrics(problem_type))
        monitored = set(metrics.monitored_metrics(problem_type))
        assert monitored and monitored <= constrained <= gate  # what is alarmed on has a constraint


def test_direction_decides_the_operator_and_the_alarm_statistic():
    accuracy = metrics.metric("accuracy", names.BINARY_CLASSIFICATION)
    mae = metrics.metric("mae", names.REGRESSION)
    assert (accuracy.comparison_operator, accuracy.alarm_statistic) == ("LessThanThreshold", "Minimum")
    assert (mae.comparison_operator, mae.alarm_statistic) == ("GreaterThanThreshold", "Maximum")
    # The operator holds exactly when the value is worse than the threshold.
    for row in metrics.METRICS:
        worse = 0.4 if row.higher_is_better else 0.6
        better = 0.6 if row.higher_is_better else 0.4
        check = metrics.COMPARISONS[row.comparison_operator]
        assert check(worse, 0.5) and not check(better, 0.5), row.name


def test_every_registry_metric_is_computed_by_the_shared_metrics_module():
    computed = {names.BINARY_CLASSIFICATION: model_metrics.BINARY_METRICS,
                names.REGRESSION: model_metrics.REGRESSION_METRICS}
    for row in metrics.METRICS:
        assert row.name in computed[row.problem_type], row


def test_unknown_names_are_errors_that_say_what():
    with pytest.raises(KeyError, match="no metric 'mae' for 'BinaryClassification'"):
        metrics.metric("mae", names.BINARY_CLASSIFICATION)
    with pytest.raises(KeyError, match="unknown problem type 'Ranking'"):
        metrics.gate_metrics("Ranking")


def test_the_configuration_takes_its_metrics_from_the_registry():
    cfg = load_config({"PROBLEM_TYPE": "Regression", "QUALITY_METRIC": "rmse", "QUALITY_THRESHOLD": "0.8"})
    assert cfg.monitored_metrics == ("mae", "rmse", "r2")
    assert cfg.gate_higher_is_better is False and cfg.metric("r2").higher_is_better
