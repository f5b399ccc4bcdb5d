"""Synthetic capture and ground-truth windows, for the tests and the scale benchmark.

Records are the documented shapes (docs/CONTRACTS.md §2), written with a
string template so that a million of them take seconds, not minutes. The
request payload is a realistic sentence pair (with quotes to escape), so the
files are as large as real capture files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from stscontracts import names, records

PAIRS = (
    ('Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.',
     'Referring to him as only "the witness", Amrozi accused his brother of deliberately distorting his evidence.'),
    ("Yucaipa owned Dominick's before selling the chain to Safeway in 1998 for $2.5 billion.",
     "Yucaipa bought Dominick's in 1995 for $693 million and sold it to Safeway for $1.8 billion in 1998."),
    ("They had published an advertisement on the Internet on June 10, offering the cargo for sale, he added.",
     "On June 10, the ship's owners had published an advertisement on the Internet, offering the explosives for sale."),
)


@dataclass(frozen=True)
class SyntheticWindow:
    """What was written, for assertions and for Evidently in the benchmark."""

    ids: np.ndarray  # inference ids, capture order
    y_true: np.ndarray
    y_pred: np.ndarray
    score: np.ndarray
    capture_files: list[Path]
    label_files: list[Path]


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def write_window(
    capture_root: Path,
    ground_truth_root: Path,
    hour: datetime,
    n: int,
    *,
    accuracy: float = 0.85,
    positive_rate: float = 0.6,
    seed: int = 0,
    files: int = 4,
    endpoint: str = "sts-endpoint",
    label_fraction: float = 1.0,
    label_hour: datetime | None = None,
    id_prefix: str = "sts",
) -> SyntheticWindow:
    """Write ``n`` capture records in ``hour`` and labels for ``label_fraction`` of them.

    Binary classification, CSV output ``label,probability``; the prediction is
    right with probability ``accuracy``. Labels go to ``label_hour`` (default:
    the same hour).
    """
    rng = np.random.default_rng(seed)
    y_true = (rng.random(n) < positive_rate).astype(int)
    wrong = rng.random(n) >= accuracy
    y_pred = np.where(wrong, 1 - y_true, y_true)
    margin = rng.uniform(0.0, 0.5, n)
    score = np.round(np.where(y_pred == 1, 0.5 + margin, 0.499999 - margin), 6)  # >= 0.5 iff predicted 1
    score = np.clip(score, 0.0, 1.0)
    ids = np.array([f"{id_prefix}_{i}" for i in range(n)])
    hour = hour.astimezone(timezone.utc)
    offsets = np.sort(rng.integers(0, 3_600_000, n))
    inputs = [_csv_field(a) + "," + _csv_field(b) + "\n" for a, b in PAIRS]

    capture_dir = capture_root / endpoint / names.VARIANT / names.hour_prefix(hour)
    capture_dir.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, n, files + 1).astype(int)
    capture_files = []
    base = hour.replace(tzinfo=None)
    for f in range(files):
        lo, hi = bounds[f], bounds[f + 1]
        if lo == hi:
            continue
        first = base + timedelta(milliseconds=int(offsets[lo]))
        path = capture_dir / f"{first:%M-%S}-{first.microsecond // 1000:03d}-{f:08d}-0000-0000-0000-{seed:012d}.jsonl"
        lines = []
        for i in range(lo, hi):
            moment = base + timedelta(milliseconds=int(offsets[i]))
            lines.append(records.line(records.capture_record(
                event_id=f"{seed:08x}-{i:012d}", inference_id=str(ids[i]),
                inference_time=records.inference_time(moment.replace(tzinfo=timezone.utc)),
                endpoint_input=records.payload("text/csv", "INPUT", inputs[i % len(inputs)], "CSV"),
                endpoint_output=records.payload("text/csv", "OUTPUT", f"{y_pred[i]},{score[i]:.6f}\n", "CSV"))))
        path.write_text("".join(lines), encoding="utf-8")
        capture_files.append(path)

    labelled = np.flatnonzero(rng.random(n) < label_fraction) if label_fraction < 1 else np.arange(n)
    label_dir = ground_truth_root / names.hour_prefix(label_hour or hour)
    label_dir.mkdir(parents=True, exist_ok=True)
    label_path = label_dir / f"labels-{seed}.jsonl"
    label_path.write_text("".join(
        records.line(records.ground_truth_record(str(ids[i]), int(y_true[i]))) for i in labelled), encoding="utf-8")
    return SyntheticWindow(ids, y_true, y_pred, score, capture_files, [label_path])


def write_constraints(folder: Path, *, accuracy: float = 0.8, f1: float = 0.8, auc: float | None = 0.8,
                      precision: float | None = None, recall: float | None = None) -> Path:
    """A binary-classification ``constraints.json`` (LessThanThreshold on each metric given)."""
    wanted = {"accuracy": accuracy, "f1": f1, "auc": auc, "precision": precision, "recall": recall}
    body = {"version": 0.0, "binary_classification_constraints": {
        name: {"threshold": value, "comparison_operator": "LessThanThreshold"}
        for name, value in wanted.items() if value is not None}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "constraints.json"
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")
    return path
