"""The metric registry: every quality metric a part decides something with, once.

A row says which problem type the metric belongs to, which way is better,
and so what follows from it everywhere:

- the quality gate (``QUALITY_METRIC``): ``>=`` the threshold passes when
  higher is better, ``<=`` when lower is better (``pipeline_code``);
- a baseline constraint (``constraints.json``, Model Monitor's form) and
  so its check in the monitor: ``LessThanThreshold`` (a violation when the
  value is below it) when higher is better, ``GreaterThanThreshold`` when
  lower is better (``baseline.py``, ``monitor_baseline.py``);
- the CloudWatch alarm on the published metric: the same comparison
  operator, on the worst value of the period (``Minimum`` when higher is
  better, ``Maximum`` when lower is better) (``stacks``);
- what the dashboard and the alarms watch (``monitored``), what the gate
  may use (``gate``), what the baseline constrains (``constrained``) and
  whether a threshold stays within [0, 1] (``unit_interval``).

Names are Model Monitor's (AWS docs, "Model quality metrics and Amazon
CloudWatch monitoring"), which are also the keys of ``evaluation.json``.
docs/CONTRACTS.md has the table; tests/stscontracts/ checks it against
:data:`METRICS`. Standard library only (it ships with the step scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .names import BINARY_CLASSIFICATION, PROBLEM_TYPES, REGRESSION

HIGHER = "higher"
LOWER = "lower"

#: Model Monitor's (and CloudWatch's) comparison operators: a violation (an
#: alarm) when the comparison of value and threshold holds.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class Metric:
    """One row of the registry (see the module docstring)."""

    name: str
    problem_type: str
    direction: str  # HIGHER or LOWER is better
    gate: bool = False
    constrained: bool = False
    monitored: bool = False
    unit_interval: bool = False

    @property
    def higher_is_better(self) -> bool:
        return self.direction == HIGHER

    @property
    def comparison_operator(self) -> str:
        """The constraint's and the alarm's operator: it holds when the value is worse than the threshold."""
        return "LessThanThreshold" if self.higher_is_better else "GreaterThanThreshold"

    @property
    def alarm_statistic(self) -> str:
        """The statistic an alarm watches: the period's worst value."""
        return "Minimum" if self.higher_is_better else "Maximum"


_B, _R = BINARY_CLASSIFICATION, REGRESSION
#: The registry, in report order within each problem type.
METRICS: tuple[Metric, ...] = (
    Metric("accuracy", _B, HIGHER, gate=True, constrained=True, monitored=True, unit_interval=True),
    Metric("precision", _B, HIGHER, gate=True, constrained=True, monitored=True, unit_interval=True),
    Metric("recall", _B, HIGHER, gate=True, constrained=True, monitored=True, unit_interval=True),
    Metric("f1", _B, HIGHER, gate=True, constrained=True, monitored=True, unit_interval=True),
    Metric("auc", _B, HIGHER, gate=True, constrained=True, monitored=True, unit_interval=True),
    Metric("f0_5", _B, HIGHER, unit_interval=True),
    Metric("f2", _B, HIGHER, unit_interval=True),
    Metric("mae", _R, LOWER, gate=True, constrained=True, monitored=True),
    Metric("mse", _R, LOWER, gate=True, constrained=True),
    Metric("rmse", _R, LOWER, gate=True, constrained=True, monitored=True),
    Metric("r2", _R, HIGHER, gate=True, constrained=True, monitored=True),
    Metric("pearson", _R, HIGHER),
    Metric("spearman", _R, HIGHER),
)
_BY_KEY = {(m.problem_type, m.name): m for m in METRICS}


def metric(name: str, problem_type: str) -> Metric:
    """The registry row of ``name`` for ``problem_type`` (KeyError naming both when there is none)."""
    try:
        return _BY_KEY[(problem_type, name)]
    except KeyError:
        raise KeyError(f"no metric {name!r} for {problem_type!r} in the registry") from None


def _select(problem_type: str, flag: str) -> tuple[str, ...]:
    if problem_type not in PROBLEM_TYPES:
        raise KeyError(f"unknown problem type {problem_type!r} (one of {', '.join(PROBLEM_TYPES)})")
    return tuple(m.name for m in METRICS if m.problem_type == problem_type and getattr(m, flag))


def gate_metrics(problem_type: str) -> tuple[str, ...]:
    """The metrics ``QUALITY_METRIC`` may name for a problem type."""
    return _select(problem_type, "gate")


def constrained_metrics(problem_type: str) -> tuple[str, ...]:
    """The metrics the baseline writes a constraint for (and the monitor checks)."""
    return _select(problem_type, "constrained")


def monitored_metrics(problem_type: str) -> tuple[str, ...]:
    """The metrics the dashboard shows and the alarms watch."""
    return _select(problem_type, "monitored")


def higher_is_better(name: str, problem_type: str) -> bool:
    return metric(name, problem_type).higher_is_better
