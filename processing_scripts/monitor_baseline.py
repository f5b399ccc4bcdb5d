"""The monitor's baseline: ``constraints.json`` (+ ``statistics.json``) read and checked, and the
comparison of a window's metrics with the constraints (Model Monitor's violation records).

Standard library (and model_metrics' names of the metrics).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stscontracts import metrics as registry
from stscontracts import names

try:  # imported as processing_scripts.<module> (tests, local runtime)
    from . import model_metrics, monitor_window
except ImportError:  # run next to its sibling modules (SageMaker)
    import model_metrics  # type: ignore[no-redef]
    import monitor_window  # type: ignore[no-redef]

MonitorError = monitor_window.MonitorError

#: Model Monitor's comparison operators; a violation is when the comparison holds.
COMPARISONS = registry.COMPARISONS

#: Scalar metrics of each problem type (Model Monitor's names), in its statistics.json order.
SCALAR_METRICS = {
    names.BINARY_CLASSIFICATION: model_metrics.MODEL_MONITOR_BINARY_METRICS,
    names.REGRESSION: model_metrics.MODEL_MONITOR_REGRESSION_METRICS,
}


@dataclass(frozen=True)
class Baseline:
    problem_type: str
    constraints: dict[str, dict[str, Any]]  # metric -> {threshold, comparison_operator}
    statistics: dict[str, Any] | None  # the baseline's metrics block, when statistics.json exists


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MonitorError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MonitorError(f"{path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MonitorError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None


def load_baseline(baseline_dir: Path, problem_type: str = "auto") -> Baseline:
    """Read and check ``constraints.json`` (+ ``statistics.json`` if present)."""
    path = baseline_dir / names.CONSTRAINTS_FILE
    if not path.is_file():
        found = sorted(p.name for p in baseline_dir.iterdir()) if baseline_dir.is_dir() else []
        raise MonitorError(
            f"no {names.CONSTRAINTS_FILE} in the baseline folder {baseline_dir} (found: {', '.join(found) or 'nothing'})"
        )
    body = _load_json(path)
    if not isinstance(body, dict):
        raise MonitorError(f"{path}: expected a JSON object")
    present = [pt for pt, key in names.CONSTRAINTS_KEY.items() if key in body]
    if problem_type == "auto":
        if len(present) != 1:
            keys = " or ".join(names.CONSTRAINTS_KEY.values())
            raise MonitorError(f"{path}: expected exactly one of {keys}, found {len(present)}")
        problem_type = present[0]
    elif problem_type not in present:
        raise MonitorError(
            f"{path}: --problem-type {problem_type} needs {names.CONSTRAINTS_KEY[problem_type]!r}, "
            f"the file has {', '.join(names.CONSTRAINTS_KEY[p] for p in present) or 'neither'}"
        )
    key = names.CONSTRAINTS_KEY[problem_type]
    raw = body[key]
    if not isinstance(raw, dict):
        raise MonitorError(f"{path}: {key} must be an object of metric -> constraint")
    constraints: dict[str, dict[str, Any]] = {}
    for metric, spec in raw.items():
        where = f"{path}: {key}.{metric}"
        if metric not in SCALAR_METRICS[problem_type]:
            raise MonitorError(f"{where}: unknown metric (known: {', '.join(SCALAR_METRICS[problem_type])})")
        if not isinstance(spec, dict):
            raise MonitorError(f"{where}: expected {{threshold, comparison_operator}}")
        op, threshold = spec.get("comparison_operator"), spec.get("threshold")
        if op not in COMPARISONS:
            raise MonitorError(f"{where}: comparison_operator {op!r} is not one of {', '.join(COMPARISONS)}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise MonitorError(f"{where}: threshold {threshold!r} is not a number")
        constraints[metric] = {"threshold": float(threshold), "comparison_operator": op}
    statistics = None
    stats_path = baseline_dir / names.STATISTICS_FILE
    if stats_path.is_file():
        stats_body = _load_json(stats_path)
        block = stats_body.get(names.METRICS_KEY[problem_type]) if isinstance(stats_body, dict) else None
        statistics = block if isinstance(block, dict) else None
    return Baseline(problem_type, constraints, statistics)


def check_constraints(constraints: dict[str, dict[str, Any]], metrics: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(violations, checks): Model Monitor's violation records, and every check made."""
    violations, checks = [], []
    for metric, spec in constraints.items():
        raw = metrics.get(metric, {}).get("value", "NaN")
        value = float(raw) if not isinstance(raw, str) else float("nan")
        op, threshold = spec["comparison_operator"], spec["threshold"]
        if not math.isfinite(value):
            checks.append({"metric_name": metric, "value": "NaN", "threshold": threshold,
                           "comparison_operator": op, "status": "NotEvaluated",
                           "reason": "the metric is undefined for this window"})
            continue
        violated = COMPARISONS[op](value, threshold)
        checks.append({"metric_name": metric, "value": value, "threshold": threshold,
                       "comparison_operator": op, "status": "Violation" if violated else "OK"})
        if violated:
            violations.append({
                "metric_name": metric,
                "constraint_check_type": op,
                "description": f"Metric {metric} with {value:.6g} was {op} {threshold:.6g}",
            })
    return violations, checks
