"""Evaluate step: score the test split with the trained model, write evaluation.json.

Inputs: ``--model-dir`` (``/opt/ml/processing/model``, holding the training
job's ``model.tar.gz`` or an extracted ``model.joblib``) and ``--test-dir``
(``/opt/ml/processing/test``, headerless ``label,sentence1,sentence2`` CSVs).
Output: ``--output-dir`` (``/opt/ml/processing/evaluation``) /
``evaluation.json`` in SageMaker model-metrics form::

    {"problem_type": "BinaryClassification", "item_count": 871,
     "binary_classification_metrics": {
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        "accuracy": {"value": 0.79, "standard_deviation": 0.014}, "auc": {...}, ...}}

(``regression_metrics`` with mae, mse, rmse, r2, pearson, spearman for
Regression). Each ``standard_deviation`` comes from ``--bootstrap-samples``
resamples of the test rows, seeded by ``--random-state``. The quality gate
reads ``binary_classification_metrics.<metric>.value`` (names.gate_json_path).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from stscontracts import names

from steputil import AtomicWriter, UserError, load_model, metrics_block, predict, read_split, \
    resolve_problem_type, run_main


def evaluate(model_dir: Path, test_dir: Path, output_dir: Path, *, n_bootstrap: int = 1000,
             random_state: int = 0) -> dict:
    """Write ``output_dir/evaluation.json``; returns its content."""
    if n_bootstrap < 0:
        raise UserError(f"--bootstrap-samples must be >= 0, got {n_bootstrap}")
    pipeline, info = load_model(model_dir)
    problem_type = info.get("problem_type")
    if problem_type not in names.PROBLEM_TYPES:
        raise UserError(f"{model_dir}: model_info.json has an unknown problem_type {problem_type!r}")
    y, pairs = read_split(test_dir, "test")
    resolve_problem_type(problem_type, y, str(test_dir))
    pred, prob = predict(pipeline, problem_type, pairs)
    report = {
        "problem_type": problem_type,
        "item_count": len(pairs),
        names.METRICS_KEY[problem_type]: metrics_block(
            problem_type, y, pred, prob, n_bootstrap=n_bootstrap, random_state=random_state),
    }
    with AtomicWriter() as out:
        out.write_json(output_dir / names.EVALUATION_FILE, report)
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/model"))
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    parser.add_argument("--bootstrap-samples", type=int, default=1000,
                        help="resamples for the standard deviations (default: %(default)s; 0 = none)")
    parser.add_argument("--random-state", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report = evaluate(args.model_dir, args.test_dir, args.output_dir,
                      n_bootstrap=args.bootstrap_samples, random_state=args.random_state)
    metrics = report[names.METRICS_KEY[report["problem_type"]]]
    shown = ", ".join(f"{k} {v['value']:.4f}" for k, v in metrics.items()
                      if k in ("accuracy", "f1", "auc", "mae", "rmse", "r2", "pearson") and v["value"] is not None)
    print(f"evaluate: {report['item_count']} test pairs, {report['problem_type']}: {shown}")


if __name__ == "__main__":
    sys.exit(run_main(main))
