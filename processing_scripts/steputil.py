"""Helpers shared by the step scripts: user errors, split files, atomic outputs, model loading.

Standard library, numpy and joblib only (runs in the SageMaker scikit-learn
container). Imported as the top-level module ``steputil`` by the scripts next
to it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from stscontracts import names

#: Exit code of a step script on a user error (bad data, bad argument), like argparse.
USER_ERROR_EXIT = 2


class UserError(Exception):
    """A problem the user can fix (bad input file, bad argument): one clear line, exit code 2."""


def run_main(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Run a script's ``main``; a :class:`UserError` becomes ``error: ...`` on stderr and exit code 2."""
    try:
        main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    return 0


def single_threaded_blas():
    """A context that limits BLAS (OpenBLAS/MKL) to one thread.

    The model's matrices are small (a few thousand rows, about 80 columns):
    BLAS threads only add overhead, and on a busy machine OpenBLAS's spinning
    threads made fitting the MLP ten times slower in CPU time
    (bench/model_quality.py). OpenMP (gradient boosting) is not limited.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def env_path(env: str, default: str) -> str:
    """The SageMaker path in ``$env`` if set (training toolkit), else ``default``."""
    return os.environ.get(env) or default


# -- problem types ----------------------------------------------------------


def is_binary(labels: Iterable[float]) -> bool:
    """True when every label is exactly 0 or 1."""
    return all(v == 0.0 or v == 1.0 for v in labels)


def resolve_problem_type(requested: str, labels: Sequence[float], where: str) -> str:
    """``requested`` if explicit (checked against the labels), else inferred from them.

    ``auto``: all labels 0/1 -> BinaryClassification, else Regression.
    """
    if requested not in ("auto", *names.PROBLEM_TYPES):
        raise UserError(f"unknown problem type {requested!r}; expected auto, "
                        f"{names.BINARY_CLASSIFICATION} or {names.REGRESSION}")
    binary = is_binary(labels)
    if requested == "auto":
        return names.BINARY_CLASSIFICATION if binary else names.REGRESSION
    if requested == names.BINARY_CLASSIFICATION and not binary:
        bad = next(v for v in labels if v not in (0.0, 1.0))
        raise UserError(f"{where}: label {format_label(bad)} is not 0 or 1, "
                        f"but the problem type is {names.BINARY_CLASSIFICATION}")
    return requested


def format_label(value: float) -> str:
    """A label as written in split files: ``0``/``1`` for integers, else the shortest float repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- split files --------------------------------------------------------------


def parse_label(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: label {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: label {text!r} is not a finite number")
    return value


def read_split(folder: str | os.PathLike, name: str = "split") -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Labels and sentence pairs of every ``*.csv`` in ``folder`` (sorted by file name).

    Files are headerless RFC 4180 ``label,sentence1,sentence2`` (docs/CONTRACTS.md).
    Raises :class:`UserError` naming the file and line of the first bad row.
    """
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"{name} folder not found: {path}")
    files = sorted(p for p in path.glob("*.csv") if p.is_file())
    if not files:
        raise UserError(f"{name} folder {path} has no *.csv files")
    labels: list[float] = []
    pairs: list[tuple[str, str]] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            for row in reader:
                where = f"{file}:{reader.line_num}"
                if len(row) != 3:
                    raise UserError(f"{where}: expected 3 columns (label,sentence1,sentence2), got {len(row)}")
                labels.append(parse_label(row[0], where))
                pairs.append((row[1], row[2]))
        except csv.Error as exc:
            raise UserError(f"{file}:{reader.line_num}: malformed CSV ({exc})") from None
    if not pairs:
        raise UserError(f"{name} folder {path} has no rows")
    return np.asarray(labels, dtype=np.float64), pairs


def split_csv(labels: Sequence[float], pairs: Sequence[tuple[str, str]]) -> str:
    """Rows as headerless RFC 4180 ``label,sentence1,sentence2`` text."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for label, (s1, s2) in zip(labels, pairs):
        writer.writerow((format_label(label), s1, s2))
    return buf.getvalue()


# -- atomic outputs -------------------------------------------------------------


class AtomicWriter:
    """Collects output files under temporary names and renames them all at the end.

    ``write(path, text)`` writes ``.path.tmp-<pid>`` next to ``path``;
    ``commit()`` renames every file into place; ``abort()`` (or leaving a
    ``with`` block on an exception) removes the temporary files, so a failed
    step leaves no partial outputs.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._made_dirs: list[Path] = []

    def write(self, path: str | os.PathLike, data: str | bytes) -> None:
        path = Path(path)
        missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._made_dirs.extend(reversed(missing))
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8", newline="")
        else:
            tmp.write_bytes(data)
        self._pending.append((tmp, path))

    def write_json(self, path: str | os.PathLike, obj) -> None:
        self.write(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")

    def commit(self) -> None:
        for tmp, final in self._pending:
            os.replace(tmp, final)
        self._pending.clear()
        self._made_dirs.clear()

    def abort(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending.clear()
        for folder in reversed(self._made_dirs):
            try:
                folder.rmdir()
            except OSError:
                pass
        self._made_dirs.clear()

    def __enter__(self) -> "AtomicWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# -- model artifacts --------------------------------------------------------------


def extract_model_archive(archive: Path, dest: Path) -> None:
    """Extract ``model.tar.gz`` into ``dest``, refusing links and paths outside it."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                target = (dest / member.name).resolve()
                if not (member.isfile() or member.isdir()) or not target.is_relative_to(dest.resolve()):
                    raise UserError(f"{archive}: unsafe archive member {member.name!r}")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{archive}: not a readable model.tar.gz ({exc})") from None


def load_model(model_dir: str | os.PathLike):
    """``(pipeline, model_info)`` from a folder holding ``model.tar.gz`` or ``model.joblib``.

    The pickled pipeline refers to the sibling modules (``featurizer``,
    ``stsmodel``), which must be importable - they are, next to the scripts.
    """

    folder = Path(model_dir)
    archive = folder / names.MODEL_ARCHIVE
    if archive.is_file():
        with tempfile.TemporaryDirectory(prefix="model-") as tmp:
            extract_model_archive(archive, Path(tmp))
            return _load_extracted(Path(tmp), archive)
    if (folder / names.MODEL_FILE).is_file():
        return _load_extracted(folder, folder)
    raise UserError(f"no {names.MODEL_ARCHIVE} or {names.MODEL_FILE} in {folder}")


def _load_extracted(folder: Path, source: Path):
    import joblib

    model_file = folder / names.MODEL_FILE
    info_file = folder / names.MODEL_INFO_FILE
    if not model_file.is_file():
        raise UserError(f"{source}: has no {names.MODEL_FILE}")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{source}: cannot read {names.MODEL_INFO_FILE} ({exc})") from None
    pipeline = joblib.load(model_file)
    return pipeline, info


def predict(pipeline, problem_type: str, pairs) -> tuple[np.ndarray, np.ndarray | None]:
    """``(prediction, probability)``: 0/1 labels and P(label 1) at threshold 0.5, or scores and None."""
    with single_threaded_blas():
        if problem_type == names.BINARY_CLASSIFICATION:
            prob = pipeline.predict_proba(pairs)[:, 1]
            return (prob >= 0.5).astype(np.int64), prob
        return np.asarray(pipeline.predict(pairs), dtype=np.float64), None


def metrics_block(problem_type: str, y, pred, prob, *, n_bootstrap: int, random_state: int,
                  curves: bool = False) -> dict:
    """The metrics block of ``problem_type`` (model_metrics), keyed as in evaluation.json."""
    import model_metrics

    if problem_type == names.BINARY_CLASSIFICATION:
        return model_metrics.binary_classification_metrics(
            np.asarray(y, dtype=np.int64), pred, prob, n_bootstrap=n_bootstrap,
            random_state=random_state, curves=curves)
    return model_metrics.regression_metrics(y, pred, n_bootstrap=n_bootstrap, random_state=random_state)
