"""Data-quality baseline step: what the served pairs and predictions should look like, as Model Monitor
data-quality baseline files.

Inputs: ``--model-dir`` (``/opt/ml/processing/model``: ``model.tar.gz``) and
``--validation-dir`` (``/opt/ml/processing/validation``). Outputs in
``--output-dir`` (``/opt/ml/processing/data-quality-baseline``), all or nothing:

- ``statistics.json``: Model Monitor's data-quality statistics of the watched
  features (``pair_features``: text descriptors of each sentence, the model's
  own pair features, the prediction) over the validation split, as the model
  answers it;
- ``constraints.json``: Model Monitor's data-quality constraints: each
  feature's type and completeness, and the distribution comparison
  (``--comparison-method``, ``--comparison-threshold``: see
  ``data_quality`` and docs/monitoring.md for how the defaults were chosen);
- ``vocabulary.txt``: the word tokens the model was trained on (the
  featurizer's vocabulary), one per line, for the unseen-token shares;
- ``preprocessor.py``: Model Monitor's record preprocessor
  (``pair_features.py`` with that vocabulary), so the ``model-monitor`` backend
  computes the same features as the monitor;
- ``calibration.json`` (binary classification): how well the served
  probabilities are calibrated on the validation split (expected calibration
  error, reliability table) and how close the confidence-based estimates come
  to the realized accuracy, precision, recall and F1 there; the monitor's
  estimates before labels rest on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from stscontracts import names

import data_quality
import pair_features
import performance_estimation
from steputil import AtomicWriter, UserError, load_model, predict, read_split, resolve_problem_type, run_main

#: Defaults of the distribution comparison, chosen from bench/data_quality_thresholds.py (docs/monitoring.md).
DEFAULT_METHOD = "Robust"
DEFAULT_THRESHOLD = 0.05


def vocabulary_of(pipeline) -> list[str]:
    """The featurizer's training vocabulary (its word IDF table), sorted."""
    featurizer = pipeline.named_steps.get("features") if hasattr(pipeline, "named_steps") else None
    table = getattr(featurizer, "word_idf_", None)
    if table is None:
        raise UserError("the model has no fitted featurizer (named step 'features' with word_idf_)")
    return sorted(table)


def preprocessor_source(vocabulary: Sequence[str]) -> str:
    """pair_features.py with the vocabulary set: Model Monitor's record preprocessor."""
    source = Path(pair_features.__file__).read_text(encoding="utf-8")
    return (source.rstrip("\n") + "\n\n\n# -- set by data_quality_baseline.py: the vocabulary of the model it baselined\n"
            + f"VOCABULARY = frozenset(json.loads({json.dumps(json.dumps(list(vocabulary)))}))\n"
            ).replace("from collections import Counter\n", "import json\nfrom collections import Counter\n", 1)


def data_quality_baseline(model_dir: Path, validation_dir: Path, output_dir: Path, *,
                          comparison_threshold: float = DEFAULT_THRESHOLD,
                          comparison_method: str = DEFAULT_METHOD) -> dict:
    """Write the baseline files; returns the constraints."""
    if comparison_method not in data_quality.METHODS:
        raise UserError(f"--comparison-method must be one of {', '.join(data_quality.METHODS)}, "
                        f"got {comparison_method!r}")
    if not comparison_threshold >= 0:
        raise UserError(f"--comparison-threshold must be >= 0, got {comparison_threshold}")
    pipeline, info = load_model(model_dir)
    problem_type = info.get("problem_type")
    if problem_type not in names.PROBLEM_TYPES:
        raise UserError(f"{model_dir}: model_info.json has an unknown problem_type {problem_type!r}")
    y, pairs = read_split(validation_dir, "validation")
    resolve_problem_type(problem_type, y, str(validation_dir))
    vocabulary = vocabulary_of(pipeline)
    pred, prob = predict(pipeline, problem_type, pairs)
    if problem_type == names.BINARY_CLASSIFICATION:
        prob = np.round(prob, 6)  # as the endpoint answers it
        columns = data_quality.feature_columns(pairs, problem_type, vocabulary=set(vocabulary),
                                               probability=prob, label=pred)
    else:
        columns = data_quality.feature_columns(pairs, problem_type, vocabulary=set(vocabulary),
                                               score=np.round(pred, 6))
    statistics = data_quality.dataset_statistics(columns, len(pairs))
    constraints = data_quality.suggest_constraints(statistics, comparison_threshold=comparison_threshold,
                                                   comparison_method=comparison_method)
    with AtomicWriter() as out:
        out.write_json(output_dir / names.STATISTICS_FILE, statistics)
        out.write_json(output_dir / names.CONSTRAINTS_FILE, constraints)
        out.write(output_dir / names.VOCABULARY_FILE, "".join(f"{w}\n" for w in vocabulary))
        out.write(output_dir / names.PREPROCESSOR_FILE, preprocessor_source(vocabulary))
        if problem_type == names.BINARY_CLASSIFICATION:
            report = performance_estimation.calibration(prob, y)
            estimated = performance_estimation.estimate(prob, pred)
            labels = y.astype(int)
            tp = int(((pred == 1) & (labels == 1)).sum())
            fp = int(((pred == 1) & (labels == 0)).sum())
            fn = int(((pred == 0) & (labels == 1)).sum())
            realized = {
                "accuracy": float((pred == labels).mean()),
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
                "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            }
            report["estimates_on_validation"] = {
                m: {**estimated[m], "realized": round(realized[m], 6)} for m in performance_estimation.ESTIMATED_METRICS}
            out.write_json(output_dir / names.CALIBRATION_FILE, report)
            print(f"data-quality baseline: expected calibration error {report['expected_calibration_error']:.4f} "
                  f"({'well calibrated' if report['well_calibrated'] else 'NOT well calibrated: estimates before '}"
                  f"{'' if report['well_calibrated'] else 'labels are unreliable'}); estimated accuracy "
                  f"{estimated['accuracy']['value']:.4f} vs realized {realized['accuracy']:.4f}")
    print(f"data-quality baseline: {len(statistics['features'])} features over {len(pairs)} validation pairs; "
          f"drift when the {comparison_method} L-infinity distance > {comparison_threshold:g}")
    return constraints


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/model"))
    parser.add_argument("--validation-dir", type=Path, default=Path("/opt/ml/processing/validation"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/data-quality-baseline"))
    parser.add_argument("--comparison-threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="baseline_drift_check: a feature drifted when its distance exceeds this "
                             "(default: %(default)s)")
    parser.add_argument("--comparison-method", default=DEFAULT_METHOD,
                        help="Robust (the L-infinity distance less the sampling noise of the window) or Simple "
                             "(default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    data_quality_baseline(args.model_dir, args.validation_dir, args.output_dir,
                          comparison_threshold=args.comparison_threshold, comparison_method=args.comparison_method)


if __name__ == "__main__":
    sys.exit(run_main(main))
