"""The monitor's data-quality half: the window's captured pairs and predictions against the served
package's data-quality baseline, and the quality estimated before labels.

Runs in the same job as the model-quality check, on the same window's capture
files (the hours ``monitor_window`` found; nothing else is read), and needs
no label:

1. **Rows.** Each capture record is one row: its request's sentence pair
   (``endpointInput``, the endpoint's request formats) and its answer's
   prediction (``endpointOutput``). A record whose request does not hold
   exactly one readable pair has its pair features missing; one whose
   answer does not hold exactly one prediction, its prediction features
   (the completeness check counts both); a line that is not a capture
   record at all is no row. Records are taken as captured,
   duplicates included, as Model Monitor's data-quality job takes them.
2. **Sample.** The pair features cost ~0.1 ms a pair in Python
   (``pair_features.pair_row``), so a window of more than ``--data-quality-
   sample`` records (default :data:`SAMPLE_MAX`) is read through an evenly
   spread, deterministic sample of that many records: files up to
   :data:`ALL_BYTES` in all are read whole and every k-th record kept;
   larger windows are read at evenly spaced byte offsets (the record after
   each offset: one seek and two line reads each, nothing else of the files
   is read). The Robust distance subtracts the sampling noise of the
   sample's size, so sampling cannot raise a false drift; the result says
   how many records were sampled. A window read at offsets gets its
   sample's features from a forked child process (:func:`start_sample`), on
   the other core while the job parses the whole window for the model-quality
   check: same function, same result, about 0.7 s less wall time for a
   million records on 2 cores.
3. **Check.** ``data_quality``: the window's Model Monitor data-quality
   ``statistics.json``, and its ``constraint_violations.json`` against the
   baseline's ``constraints.json`` (completeness, data type, missing column,
   baseline drift with Deequ's L-infinity distance, PSI beside it).
4. **Estimated quality** (binary classification): ``performance_estimation``
   (CBPE) over every captured prediction of the window (not the sample:
   the model-quality pass has decoded them all, vectorized): accuracy,
   precision, recall and F1 with a 95 % interval. An estimate worse than
   the package's model-quality constraint (``constraints.json`` of the
   model-quality baseline: same threshold and operator) is a violation.
   The baseline's ``calibration.json`` says whether the probabilities are
   calibrated enough for the estimate to be trusted (``reliable``).
   Regression: not estimated (``reason`` says why).

Standard library and numpy.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import multiprocessing
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from stscontracts import names

try:  # imported as processing_scripts.<module> (tests, local runtime)
    from . import data_quality, monitor_window, pair_features, performance_estimation
except ImportError:  # run next to its sibling modules (SageMaker)
    import data_quality  # type: ignore[no-redef]
    import monitor_window  # type: ignore[no-redef]
    import pair_features  # type: ignore[no-redef]
    import performance_estimation  # type: ignore[no-redef]

MonitorError = monitor_window.MonitorError

#: Records whose pair features a window computes at most (a sample beyond: module docstring).
SAMPLE_MAX = 5000
#: Capture files up to this size in all are read whole; larger windows at evenly spaced offsets.
ALL_BYTES = 8 * 1024 * 1024

#: The data-quality part's own status (``status`` of the run stays the model-quality one).
DQ_COMPLETED = names.MONITOR_COMPLETED
DQ_VIOLATIONS = names.MONITOR_VIOLATIONS
DQ_FAILED = names.MONITOR_FAILED
#: No data-quality baseline (a package registered before it existed, or a folder without one).
DQ_NOT_EVALUATED = "NotEvaluated"


@dataclass(frozen=True)
class DataQualityBaseline:
    """The served package's data-quality baseline folder (``DriftCheckBaselines.ModelDataQuality``)."""

    folder: Path
    statistics: dict[str, Any]
    constraints: dict[str, Any]
    vocabulary: frozenset[str] | None
    calibration: dict[str, Any] | None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MonitorError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MonitorError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MonitorError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None


def load_data_quality_baseline(folder: Path | None) -> tuple[DataQualityBaseline | None, str]:
    """(the baseline, "") or (None, why there is none to check against).

    A folder without data-quality files is not an error (the package predates
    them: the check is NotEvaluated, the model-quality check runs as before);
    files that are there but unusable are (:class:`MonitorError`, exit code 2).
    """
    if folder is None or not folder.is_dir():
        return None, f"no data-quality baseline folder ({folder})"
    constraints_path = folder / names.CONSTRAINTS_FILE
    statistics_path = folder / names.STATISTICS_FILE
    if not constraints_path.is_file():
        return None, (f"no data-quality baseline in {folder} (the served package has no "
                      "DriftCheckBaselines.ModelDataQuality: register it with the current training pipeline)")
    constraints = _read_json(constraints_path)
    if isinstance(constraints, dict) and "features" not in constraints and any(
            key in constraints for key in names.CONSTRAINTS_KEY.values()):
        return None, (f"{constraints_path} is a model-quality constraints file: the served package has no "
                      "DriftCheckBaselines.ModelDataQuality")
    if not statistics_path.is_file():
        raise MonitorError(f"the data-quality baseline {folder} has {names.CONSTRAINTS_FILE} but no "
                           f"{names.STATISTICS_FILE} (the baseline drift check compares with it)")
    try:
        data_quality.validate_constraints(constraints, str(constraints_path))
    except data_quality.DataQualityError as exc:
        raise MonitorError(str(exc)) from None
    statistics = _read_json(statistics_path)
    if not isinstance(statistics, dict) or not isinstance(statistics.get("features"), list):
        raise MonitorError(f"{statistics_path}: expected Model Monitor data-quality statistics (a 'features' list)")
    vocabulary = None
    vocabulary_path = folder / names.VOCABULARY_FILE
    if vocabulary_path.is_file():
        try:
            vocabulary = frozenset(vocabulary_path.read_text(encoding="utf-8").split())
        except (OSError, UnicodeDecodeError) as exc:
            raise MonitorError(f"cannot read {vocabulary_path}: {exc}") from None
    calibration_path = folder / names.CALIBRATION_FILE
    calibration = _read_json(calibration_path) if calibration_path.is_file() else None
    return DataQualityBaseline(folder, statistics, constraints, vocabulary,
                               calibration if isinstance(calibration, dict) else None), ""


# --------------------------------------------------------------------------- the sample


def _all_lines(files: Sequence[Path]) -> list[bytes]:
    lines: list[bytes] = []
    for path in files:
        lines += [line for line in path.read_bytes().split(b"\n") if line.strip()]
    return lines


def _lines_at_offsets(files: Sequence[Path], count: int) -> list[bytes]:
    """The record after each of ``count`` evenly spaced byte offsets of the files taken end to end."""
    sizes = np.array([path.stat().st_size for path in files], dtype=np.int64)
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    if total == 0:
        return []
    offsets = ((np.arange(count) + 0.5) * (total / count)).astype(np.int64)
    which = np.searchsorted(ends, offsets, side="right")
    lines: list[bytes] = []
    seen: set[tuple[int, int]] = set()
    for index in np.unique(which).tolist():
        starts = ends[index] - sizes[index]
        with open(files[index], "rb") as handle:
            for offset in offsets[which == index].tolist():
                handle.seek(offset - int(starts))
                handle.readline()  # the rest of the record the offset falls in
                where = handle.tell()
                line = handle.readline()
                if line.strip() and (index, where) not in seen:
                    seen.add((index, where))
                    lines.append(line)
    return lines


def sample_lines(files: Sequence[Path], limit: int = SAMPLE_MAX) -> tuple[list[bytes], bool]:
    """(capture lines, whether they are a sample) of the window's files, at most ``limit`` of them."""
    total = sum(path.stat().st_size for path in files)
    if total <= ALL_BYTES:
        lines = _all_lines(files)
        if len(lines) <= limit:
            return lines, False
        keep = (np.arange(limit) * len(lines)) // limit
        return [lines[i] for i in keep.tolist()], True
    return _lines_at_offsets(files, limit), True


# --------------------------------------------------------------------------- rows


def _text(part: Any) -> tuple[str, str] | None:
    """(text, content type) of a capture record's endpointInput/endpointOutput, or None."""
    if not isinstance(part, dict):
        return None
    data, content_type, encoding = part.get("data"), part.get("observedContentType"), part.get("encoding")
    if not isinstance(data, str) or not isinstance(content_type, str):
        return None
    if str(encoding).upper() == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    return data, content_type


def record_row(line: bytes) -> tuple[tuple[str, str] | None, dict[str, float]] | None:
    """(the record's one sentence pair or None, its one prediction or {}) from a capture line; None
    for a line that is not a capture record at all (bad JSON, a truncated last line: the
    model-quality half counts those as malformed lines; they are not rows with missing values)."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    capture = record.get("captureData") if isinstance(record, dict) else None
    if not isinstance(capture, dict):
        return None
    request, answer = _text(capture.get("endpointInput")), _text(capture.get("endpointOutput"))
    pairs = pair_features.request_pairs(*request) if request else []
    predictions = pair_features.answer_rows(*answer) if answer else []
    return (pairs[0] if len(pairs) == 1 else None), (predictions[0] if len(predictions) == 1 else {})


def window_columns(lines: Sequence[bytes], problem_type: str,
                   vocabulary: frozenset[str] | None) -> list[tuple[str, str, np.ndarray]]:
    """The watched features of the sampled records (data_quality.feature_columns' shape)."""
    pairs, answers = [], []
    for line in lines:
        row = record_row(line)
        if row is not None:
            pairs.append(row[0])
            answers.append(row[1])

    def column(key: str) -> np.ndarray:
        return np.array([float(a[key]) if key in a else math.nan for a in answers], dtype=float)

    if problem_type == names.BINARY_CLASSIFICATION:
        return data_quality.feature_columns(pairs, problem_type, vocabulary=vocabulary,
                                            probability=column("probability"), label=column("predicted_label"))
    return data_quality.feature_columns(pairs, problem_type, vocabulary=vocabulary, score=column("score"))


@dataclass(frozen=True)
class Sample:
    """The sampled records' watched features (what :func:`sample_columns` computes)."""

    lines: int
    sampled: bool
    columns: list[tuple[str, str, np.ndarray]]


def sample_columns(capture_files: Sequence[Path], problem_type: str, vocabulary: frozenset[str] | None,
                   limit: int = SAMPLE_MAX) -> Sample:
    """Read the window's sample (:func:`sample_lines`) and compute its watched features."""
    lines, sampled = sample_lines(capture_files, limit)
    return Sample(len(lines), sampled, window_columns(lines, problem_type, vocabulary))


class _Done:
    def __init__(self, sample: Sample) -> None:
        self._sample = sample

    def result(self) -> Sample:
        return self._sample


class _InChild:
    """:func:`sample_columns` running in a forked child; ``result()`` waits for it."""

    def __init__(self, args: tuple) -> None:
        import concurrent.futures
        import multiprocessing

        self._args = args
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        self._future = self._pool.submit(sample_columns, *args)

    def result(self) -> Sample:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._future.result()
        except BrokenProcessPool as exc:  # the child died (killed): the same computation here
            print(f"warning: the data-quality sample's process ended ({exc}); computing it in the job's process",
                  file=sys.stderr)
            return sample_columns(*self._args)
        finally:
            self._pool.shutdown(wait=True)


def start_sample(capture_files: Sequence[Path], baseline: DataQualityBaseline | None, problem_type: str,
                 limit: int = SAMPLE_MAX) -> Any:
    """Start computing the window's sample features; ``.result()`` gives the :class:`Sample` (None without
    a baseline).

    A window read at byte offsets (more than :data:`ALL_BYTES` of capture) gets it from a forked child
    on another core, while this process parses the whole window for the model-quality check: both
    read the same files and neither needs the other's result until the check
    (:func:`run_data_quality`). It is computed here, now, where there is one core, where the process
    has other threads (a fork copies only the calling one), where ``fork`` is not available, or for a
    small window (starting the child would cost more than it saves).
    """
    if baseline is None:
        return _Done(None)
    args = (list(capture_files), problem_type, baseline.vocabulary, limit)
    if (sum(path.stat().st_size for path in capture_files) > ALL_BYTES and _cores() > 1
            and threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()):
        return _InChild(args)
    return _Done(sample_columns(*args))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- the check


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def estimated_quality(problem_type: str, prediction: np.ndarray, score: np.ndarray,
                      constraints: dict[str, dict[str, Any]], calibration: dict[str, Any] | None,
                      comparisons: dict) -> dict[str, Any]:
    """CBPE estimates of the window's captured predictions and their check against the
    model-quality constraints: ``{"metrics", "violations", "records", "reliable", "reason"}``."""
    if problem_type != names.BINARY_CLASSIFICATION:
        return {"metrics": {}, "violations": [], "records": 0, "reliable": False,
                "reason": "not estimated for Regression: the endpoint serves a single score, with no predicted "
                          "distribution of the target to estimate an error from"}
    keep = np.isfinite(score) & np.isfinite(prediction)
    estimates = performance_estimation.estimate(score[keep], prediction[keep])
    ece = (calibration or {}).get("expected_calibration_error")
    reliable = bool((calibration or {}).get("well_calibrated"))
    if not estimates:
        return {"metrics": {}, "violations": [], "records": 0, "reliable": reliable,
                "reason": "no captured prediction with a probability in the window"}
    metrics, violations = {}, []
    for name, estimate in estimates.items():
        entry = dict(estimate)
        spec = constraints.get(name)
        if spec:
            op, threshold = spec["comparison_operator"], float(spec["threshold"])
            violated = comparisons[op](estimate["value"], threshold)
            entry.update(threshold=threshold, comparison_operator=op, status="Violation" if violated else "OK")
            if violated:
                violations.append({
                    "metric_name": f"{names.ESTIMATED_METRIC_PREFIX}{name}",
                    "constraint_check_type": op,
                    "description": (f"Estimated {name} {estimate['value']:.6g} (95% interval {estimate['lower']:.4g}"
                                    f"-{estimate['upper']:.4g}, no labels) was {op} {threshold:.6g}"),
                })
        metrics[name] = entry
    reason = "" if reliable else (
        "the baseline's probabilities are not well calibrated"
        + (f" (expected calibration error {ece:.3f})" if isinstance(ece, (int, float)) else " (no calibration.json)")
        + ": the estimates may be off")
    return {"metrics": metrics, "violations": violations, "records": int(keep.sum()), "reliable": reliable,
            "expected_calibration_error": _finite(ece), "reason": reason}


def run_data_quality(capture_files: Sequence[Path], baseline: DataQualityBaseline | None, reason: str, *,
                     problem_type: str, prediction: np.ndarray, score: np.ndarray,
                     model_constraints: dict[str, dict[str, Any]], comparisons: dict, execution_time: str,
                     limit: int = SAMPLE_MAX, sample: Sample | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(monitoring_result.json's ``data_quality`` block, the window's statistics.json or None).

    ``sample``: the window's :class:`Sample` if already computed (:func:`start_sample`), else computed here.
    """
    if baseline is None:
        return {"status": DQ_NOT_EVALUATED, "reason": reason, "violations": []}, None
    if sample is None:
        sample = sample_columns(capture_files, problem_type, baseline.vocabulary, limit)
    config = baseline.constraints.get("monitoring_config") or {}
    drift = config.get("distribution_constraints") or {}
    block: dict[str, Any] = {
        "status": DQ_FAILED, "reason": "", "records": sample.lines, "sampled": sample.sampled, "sample_limit": limit,
        "comparison_method": drift.get("comparison_method", "Robust"),
        "comparison_threshold": float(drift.get("comparison_threshold", 0.1)),
        "violations": [], "features": [],
    }
    block["estimated"] = estimated_quality(problem_type, prediction, score, model_constraints, baseline.calibration,
                                           comparisons)
    columns = sample.columns
    rows = len(columns[0][2])
    block["records"] = rows
    if not rows:
        block["reason"] = (f"no capture records in the window ({len(capture_files)} capture files, "
                           f"{sample.lines} lines that are not capture records)")
        return block, None
    statistics = data_quality.dataset_statistics(columns, rows)
    statistics["dataset"]["evaluation_time"] = execution_time
    violations, results = data_quality.check(baseline.constraints, baseline.statistics, statistics,
                                             {name: values for name, _, values in columns})
    block["violations"] = violations
    block["features"] = [{key: (_finite(value) if isinstance(value, float) else value) for key, value in r.items()}
                         for r in results]
    bad = violations or block["estimated"]["violations"]
    block["status"] = DQ_VIOLATIONS if bad else DQ_COMPLETED
    return block, statistics
