"""Baseline step: the model's quality on the validation split, as Model Monitor baseline files.

Inputs: ``--model-dir`` (``/opt/ml/processing/model``: ``model.tar.gz``) and
``--validation-dir`` (``/opt/ml/processing/validation``). Outputs in
``--output-dir`` (``/opt/ml/processing/baseline``):

- ``baseline.csv``: one row per validation pair with a header,
  ``prediction,probability,label`` (Regression: ``prediction,label``);
- ``statistics.json``: Model Monitor's model-quality statistics
  (``dataset.item_count``, ``evaluation_time``, the metrics block with
  bootstrap standard deviations, confusion matrix, ROC and PR curves);
- ``constraints.json``: one threshold per monitored metric.

Threshold rule (documented in docs/model.md): for a metric with baseline value
``v`` and bootstrap standard deviation ``s`` on the ``n`` validation pairs,
a monitoring window of ``m`` pairs has a deviation of about
``s * sqrt(n / m)``, so the threshold is::

    v - k * s * sqrt(n / m)    LessThanThreshold     (accuracy, precision, recall, f1, auc, r2)
    v + k * s * sqrt(n / m)    GreaterThanThreshold  (mae, mse, rmse)

with ``k`` = ``--tolerance-sd`` (default 3: a window as good as the baseline
crosses it by chance about once in a thousand) and ``m`` =
``--window-size`` (default: ``n``, i.e. windows as large as the validation
split). Thresholds of metrics bounded by [0, 1] are kept inside it.
``--metrics`` chooses the monitored metrics.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from stscontracts import metrics as registry
from stscontracts import names
from stscontracts.metrics import Metric

from steputil import AtomicWriter, UserError, format_label, load_model, metrics_block, predict, \
    read_split, resolve_problem_type, run_main

def constraint(metric: Metric, value: float, sd: float | None, *, tolerance_sd: float,
               scale: float) -> dict:
    """``{"threshold", "comparison_operator"}`` of one metric (see the module docstring)."""
    margin = tolerance_sd * (sd or 0.0) * scale
    if not metric.higher_is_better:
        return {"threshold": round(value + margin, 6), "comparison_operator": metric.comparison_operator}
    threshold = value - margin
    if metric.unit_interval:
        threshold = min(max(threshold, 0.0), 1.0)
    return {"threshold": round(threshold, 6), "comparison_operator": metric.comparison_operator}


def baseline(model_dir: Path, validation_dir: Path, output_dir: Path, *, tolerance_sd: float = 3.0,
             window_size: int = 0, metrics: Sequence[str] | None = None, n_bootstrap: int = 1000,
             random_state: int = 0, evaluated_at: datetime) -> dict:
    """Write baseline.csv, statistics.json and constraints.json; returns the constraints.

    ``evaluated_at`` is the statistics' ``dataset.evaluation_time`` (``main`` passes the clock's now).
    """
    if tolerance_sd < 0:
        raise UserError(f"--tolerance-sd must be >= 0, got {tolerance_sd}")
    if window_size < 0:
        raise UserError(f"--window-size must be >= 0 (0 = the validation size), got {window_size}")
    if n_bootstrap < 0:
        raise UserError(f"--bootstrap-samples must be >= 0, got {n_bootstrap}")
    pipeline, info = load_model(model_dir)
    problem_type = info.get("problem_type")
    if problem_type not in names.PROBLEM_TYPES:
        raise UserError(f"{model_dir}: model_info.json has an unknown problem_type {problem_type!r}")
    metrics = tuple(metrics or registry.constrained_metrics(problem_type))
    # Only a metric whose direction the registry knows can get a threshold on the right side.
    known = [m.name for m in registry.METRICS if m.problem_type == problem_type]
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise UserError(f"--metrics: {', '.join(unknown)} not among the {problem_type} metrics "
                        f"({', '.join(known)})")

    y, pairs = read_split(validation_dir, "validation")
    resolve_problem_type(problem_type, y, str(validation_dir))
    pred, prob = predict(pipeline, problem_type, pairs)
    block = metrics_block(problem_type, y, pred, prob, n_bootstrap=n_bootstrap,
                          random_state=random_state, curves=True)
    n = len(pairs)
    scale = math.sqrt(n / window_size) if window_size else 1.0
    constraints = {}
    for m in metrics:
        value = block[m]["value"]
        if value is None:
            print(f"baseline: {m} is undefined on the validation split; not monitored", file=sys.stderr)
            continue
        constraints[m] = constraint(registry.metric(m, problem_type), value, block[m]["standard_deviation"],
                                    tolerance_sd=tolerance_sd, scale=scale)
    statistics = {
        "version": 0.0,
        "dataset": {"item_count": n, "evaluation_time": _stamp(evaluated_at)},
        names.METRICS_KEY[problem_type]: block,
    }
    constraints_doc = {"version": 0.0, names.CONSTRAINTS_KEY[problem_type]: constraints}

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if problem_type == names.BINARY_CLASSIFICATION:
        writer.writerow(("prediction", "probability", "label"))
        writer.writerows((int(p), f"{q:.6f}", format_label(t)) for p, q, t in zip(pred, prob, y))
    else:
        writer.writerow(("prediction", "label"))
        writer.writerows((f"{p:.6f}", format_label(t)) for p, t in zip(pred, y))
    with AtomicWriter() as out:
        out.write(output_dir / names.BASELINE_CSV, buf.getvalue())
        out.write_json(output_dir / names.STATISTICS_FILE, statistics)
        out.write_json(output_dir / names.CONSTRAINTS_FILE, constraints_doc)
    for m, c in constraints.items():
        sd = block[m]["standard_deviation"]
        print(f"baseline: {m} {block[m]['value']:.4f} (sd {sd if sd is None else round(sd, 4)}) -> alert when "
              f"{'<' if c['comparison_operator'] == 'LessThanThreshold' else '>'} {c['threshold']:.4f}")
    return constraints_doc


def _stamp(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/model"))
    parser.add_argument("--validation-dir", type=Path, default=Path("/opt/ml/processing/validation"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/baseline"))
    parser.add_argument("--tolerance-sd", type=float, default=3.0,
                        help="k: thresholds sit k window-size standard deviations from the baseline "
                             "(default: %(default)s)")
    parser.add_argument("--window-size", type=int, default=0,
                        help="expected labelled pairs per monitoring window (default 0 = as many as the "
                             "validation split)")
    parser.add_argument("--metrics", default="",
                        help="comma-separated metrics to constrain (default: accuracy,precision,recall,f1,auc "
                             "or mae,mse,rmse,r2)")
    parser.add_argument("--bootstrap-samples", type=int, default=1000)
    parser.add_argument("--random-state", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] or None
    baseline(args.model_dir, args.validation_dir, args.output_dir, tolerance_sd=args.tolerance_sd,
             window_size=args.window_size, metrics=metrics, n_bootstrap=args.bootstrap_samples,
             random_state=args.random_state, evaluated_at=datetime.now(timezone.utc))


if __name__ == "__main__":
    sys.exit(run_main(main))
