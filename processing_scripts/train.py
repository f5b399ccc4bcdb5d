"""Train step (SageMaker script mode): fit the featurizer + estimator Pipeline on the train split.

Paths come from the SageMaker training toolkit's environment, overridable by
arguments: ``--train`` (``SM_CHANNEL_TRAIN``, ``/opt/ml/input/data/train``),
``--validation`` (``SM_CHANNEL_VALIDATION``, optional: skipped when the
folder does not exist), ``--model-dir`` (``SM_MODEL_DIR``, ``/opt/ml/model``).
Hyperparameters arrive as ``--<name> <value>`` (see ``stsmodel.Hyperparameters``
for names, meanings and defaults) plus ``--problem-type``
(``auto``: 0/1 labels -> BinaryClassification, else Regression).

Writes into the model folder, which SageMaker packs as ``model.tar.gz``:
``model.joblib`` (the fitted Pipeline), ``model_info.json`` (problem type,
labels, feature names, hyperparameters, library versions, row counts,
validation metrics) and ``code/`` (``inference.py`` and the modules the model
needs at serving time), so the archive is a self-contained serving package.
Prints ``validation:<metric>=<value>`` lines for SageMaker metric definitions.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

import stscontracts
from stscontracts import names

import model_metrics
import stsmodel
from steputil import AtomicWriter, UserError, env_path, read_split, resolve_problem_type, run_main, \
    single_threaded_blas

#: Files copied into ``code/`` of the model: the serving entry point and what it
#: imports; the contracts package goes with them (``stscontracts.package_files``).
CODE_FILES = names.MODEL_CODE_FILES
DEFAULT_VALIDATION = "/opt/ml/input/data/validation"


def _bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _versions() -> dict:
    import joblib
    import scipy
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "joblib": joblib.__version__}


def train(train_dir: Path, model_dir: Path, validation_dir: Path | None = None, *,
          problem_type: str = "auto", hyperparameters: stsmodel.Hyperparameters | None = None,
          code_dir: Path | None = None, created_at: datetime) -> dict:
    """Fit on ``train_dir``, score ``validation_dir`` (if given), write the model folder; returns model_info.

    ``created_at`` is recorded as the model's ``created_at`` (``main`` passes the clock's now).
    """
    hp = hyperparameters or stsmodel.Hyperparameters()
    y, pairs = read_split(train_dir, "train")
    problem_type = resolve_problem_type(problem_type, y, str(train_dir))
    if problem_type == names.BINARY_CLASSIFICATION:
        counts = np.bincount(y.astype(np.int64), minlength=2)
        if counts.min() < 2:
            raise UserError(f"the train split {train_dir} needs at least 2 pairs of each label, "
                            f"has {counts[0]} with label 0 and {counts[1]} with label 1")
        if hp.calibration != "none" and counts.min() < hp.calibration_folds:
            raise UserError(f"calibration-folds {hp.calibration_folds} is more than the {counts.min()} "
                            "pairs of the rarer label in the train split; lower it")
        y = y.astype(np.int64)
    pipeline = stsmodel.build_pipeline(problem_type, hp)
    start = time.perf_counter()
    with warnings.catch_warnings(), single_threaded_blas():
        # Small splits are below the MLP's batch size; scikit-learn clips it and says so on every fit.
        warnings.filterwarnings("ignore", message="Got `batch_size` less than 1 or larger than sample size")
        pipeline.fit(pairs, y)
    fit_seconds = time.perf_counter() - start

    validation = {}
    n_validation = 0
    if validation_dir is not None:
        y_val, val_pairs = read_split(validation_dir, "validation")
        resolve_problem_type(problem_type, y_val, str(validation_dir))
        n_validation = len(val_pairs)
        validation = score(pipeline, problem_type, y_val, val_pairs)
        for name, value in validation.items():
            print(f"validation:{name}={value:.6f}" if value is not None else f"validation:{name}=nan")

    info = {
        "problem_type": problem_type,
        "labels": [0, 1] if problem_type == names.BINARY_CLASSIFICATION
        else {"min": float(y.min()), "max": float(y.max())},
        "feature_names": [str(n) for n in pipeline.named_steps["features"].get_feature_names_out()],
        "estimator": hp.estimator,
        "hyperparameters": hp.as_dict(),
        "versions": _versions(),
        "row_counts": {"train": len(pairs), "validation": n_validation},
        "fit_seconds": round(fit_seconds, 3),
        "validation_metrics": validation,
        "created_at": created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    import joblib

    buf = io.BytesIO()
    joblib.dump(pipeline, buf, compress=3)
    code_dir = code_dir or Path(__file__).resolve().parent
    with AtomicWriter() as out:
        out.write(model_dir / names.MODEL_FILE, buf.getvalue())
        out.write(model_dir / names.MODEL_INFO_FILE, json.dumps(info, indent=2) + "\n")
        for name in CODE_FILES:
            out.write(model_dir / names.MODEL_CODE_DIR / name, (code_dir / name).read_bytes())
        for name, path in stscontracts.package_files():
            out.write(model_dir / names.MODEL_CODE_DIR / name, path.read_bytes())
    print(f"train: {len(pairs)} pairs, {problem_type}, estimator {hp.estimator}, fit {fit_seconds:.1f}s")
    return info


def score(pipeline, problem_type: str, y, pairs) -> dict:
    """Point metrics (no bootstrap) of ``pipeline`` on labelled pairs."""
    if problem_type == names.BINARY_CLASSIFICATION:
        with single_threaded_blas():
            prob = pipeline.predict_proba(pairs)[:, 1]
        block = model_metrics.binary_classification_metrics(
            y.astype(np.int64), (prob >= 0.5).astype(np.int64), prob, n_bootstrap=0)
        reported = ("accuracy", "precision", "recall", "f1", "auc")
    else:
        with single_threaded_blas():
            pred = pipeline.predict(pairs)
        block = model_metrics.regression_metrics(y, pred, n_bootstrap=0)
        reported = ("mae", "rmse", "r2", "pearson")
    return {name: block[name]["value"] for name in reported}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=Path(env_path("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")))
    parser.add_argument("--validation", type=Path, default=None,
                        help="validation folder (default: $SM_CHANNEL_VALIDATION, else "
                             f"{DEFAULT_VALIDATION} when it exists)")
    parser.add_argument("--model-dir", type=Path, default=Path(env_path("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument("--problem-type", default="auto", choices=["auto", *names.PROBLEM_TYPES])
    defaults = stsmodel.Hyperparameters()
    for name in stsmodel.Hyperparameters.names():
        default = getattr(defaults, name)
        kind = _bool if isinstance(default, bool) else type(default)
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=default,
                            help=f"default: {default}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        hp = stsmodel.Hyperparameters(**{n: getattr(args, n) for n in stsmodel.Hyperparameters.names()})
    except ValueError as exc:
        raise UserError(f"bad hyperparameters: {exc}") from None
    validation = args.validation or env_path("SM_CHANNEL_VALIDATION", "")
    if validation:
        validation = Path(validation)
    elif Path(DEFAULT_VALIDATION).is_dir():
        validation = Path(DEFAULT_VALIDATION)
    else:
        validation = None  # no validation channel: nothing to score
    train(args.train, args.model_dir, validation, problem_type=args.problem_type, hyperparameters=hp,
          created_at=datetime.now(timezone.utc))


if __name__ == "__main__":
    sys.exit(run_main(main))
