#!/usr/bin/env python3
"""Benchmark: the data-quality check's false-alarm rate and detection power, per threshold and method.

1. The model: ``train.py`` (the pipeline's Train step, default hyperparameters)
   on a seeded stratified 85 % of ``msr_paraphrase_train.txt`` (read with
   quoting off); the other 15 % is the validation split.
2. The baseline: ``data_quality_baseline.py`` (the pipeline's step) on that
   validation split: statistics.json and constraints.json.
3. In-distribution windows: ``--windows`` random windows of ``--size``
   requests drawn (without replacement inside a window) from
   ``msr_paraphrase_test.txt``, each checked by ``data_quality.check`` as the
   monitor checks an hour: a window *alarms* on a method and threshold when any
   feature's distance exceeds it. The share that alarm is the false-alarm
   rate (95 % Wilson interval); completeness, data-type and missing-column
   violations are counted too.
4. Shifted windows (``stsmon/traffic_shift.py``, what ``stsmon traffic --shift``
   sends): mismatched pairs, truncated sentences, and another domain (pairs
   of consecutive sentences of Python's own documentation, ``pydoc_data``,
   written to a TSV and read back as ``--shift file:PATH`` reads it); each at
   100 %, 50 % and 25 % of the window (the rest in-distribution; drawn with
   replacement when the window wants more shifted pairs than there are). The
   share that alarm is the detection power.

Deterministic for a ``--seed``. Prints markdown tables.

    .venv/bin/python bench/data_quality_thresholds.py [--msrp DIR] [--windows 1000] [--shifted-windows 200]
                                                      [--size 200 ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "processing_scripts"), str(REPO)]

import data_quality  # noqa: E402
import data_quality_baseline  # noqa: E402
import train  # noqa: E402
from preprocess import read_msrp_file  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from steputil import load_model, predict, split_csv  # noqa: E402
from stscontracts import names  # noqa: E402

from stsmon import traffic_shift  # noqa: E402

BINARY = names.BINARY_CLASSIFICATION
THRESHOLDS = {"Simple": (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4), "Robust": (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)}
FRACTIONS = (1.0, 0.5, 0.25)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def documentation_pairs(limit: int) -> list[tuple[str, str]]:
    """Consecutive sentences of Python's documentation topics (``pydoc_data``, in the standard library)."""
    import pydoc_data.topics

    text = " ".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)) if 30 <= len(s) <= 300]
    return [(sentences[i], sentences[i + 1]) for i in range(0, min(len(sentences) - 1, 2 * limit), 2)]


class Scorer:
    """The monitor's view of a set of pairs: every watched feature's column, and a window check."""

    def __init__(self, pipeline, vocabulary: set[str], baseline: dict, constraints: dict) -> None:
        self.pipeline, self.vocabulary = pipeline, vocabulary
        self.baseline, self.constraints = baseline, constraints

    def columns(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str, np.ndarray]]:
        pred, prob = predict(self.pipeline, BINARY, pairs)
        return data_quality.feature_columns(pairs, BINARY, vocabulary=self.vocabulary,
                                            probability=np.round(prob, 6), label=pred)

    def check(self, columns: list[tuple[str, str, np.ndarray]]) -> tuple[dict[str, float], dict[str, list[str]], set]:
        """(largest distance per method, features over each, other violation kinds) of one window."""
        current = data_quality.dataset_statistics(columns, len(columns[0][2]))
        violations, results = data_quality.check(self.constraints, self.baseline, current,
                                                 {name: values for name, _, values in columns})
        largest = {"Simple": 0.0, "Robust": 0.0}
        per_feature = {"Simple": [], "Robust": []}
        for r in results:
            for method, key in (("Simple", "linf_simple"), ("Robust", "linf_robust")):
                value = r.get(key, math.nan)
                if math.isfinite(value):
                    largest[method] = max(largest[method], value)
                    per_feature[method].append((value, r["feature"]))
        kinds = {v["constraint_check_type"] for v in violations} - {data_quality.CHECK_DRIFT}
        return largest, {m: [f for _, f in sorted(v, reverse=True)] for m, v in per_feature.items()}, kinds


def window(columns, index: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    return [(name, kind, values[index]) for name, kind, values in columns]


def mix(shifted, clean, size: int, fraction: float, rng: np.random.Generator):
    k = int(round(size * fraction))
    a = rng.choice(len(shifted[0][2]), size=k, replace=k > len(shifted[0][2]))
    b = rng.choice(len(clean[0][2]), size=size - k, replace=False)
    return [(name, kind, np.concatenate([sv[a], cv[b]])) for (name, kind, sv), (_, _, cv) in zip(shifted, clean)]


def rate_cell(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{k / n:.1%} ({low:.1%}-{high:.1%})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--msrp", type=Path,
                        default=Path(os.environ.get("STSMON_MSRP_DIR") or REPO.parent / "shared" / "data" / "msrp"))
    parser.add_argument("--windows", type=int, default=1000, help="in-distribution windows (default: %(default)s)")
    parser.add_argument("--shifted-windows", type=int, default=200,
                        help="windows per shift and fraction (default: %(default)s)")
    parser.add_argument("--size", type=int, nargs="+", default=[200],
                        help="requests per window; several give a table each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        if not (args.msrp / name).is_file():
            sys.exit(f"MSRP file not found: {args.msrp / name} (set STSMON_MSRP_DIR or --msrp)")
    started = time.perf_counter()
    rows = read_msrp_file(args.msrp / "msr_paraphrase_train.txt")
    labels = np.array([int(r.label) for r in rows])
    fit_idx, val_idx = train_test_split(np.arange(len(rows)), test_size=0.15, stratify=labels, random_state=args.seed)
    test = [(r.sentence1, r.sentence2) for r in read_msrp_file(args.msrp / "msr_paraphrase_test.txt")]

    with tempfile.TemporaryDirectory(prefix="dq-thresholds-") as tmp:
        work = Path(tmp)
        for split, idx in (("train", np.sort(fit_idx)), ("validation", np.sort(val_idx))):
            (work / split).mkdir()
            (work / split / f"{split}.csv").write_text(
                split_csv([rows[i].label for i in idx], [(rows[i].sentence1, rows[i].sentence2) for i in idx]),
                encoding="utf-8")
        train.train(work / "train", work / "model", work / "validation",
                    created_at=datetime(2033, 1, 1, tzinfo=timezone.utc))
        data_quality_baseline.data_quality_baseline(work / "model", work / "validation", work / "baseline")
        out = work / "baseline"
        baseline = json.loads((out / names.STATISTICS_FILE).read_text(encoding="utf-8"))
        constraints = json.loads((out / names.CONSTRAINTS_FILE).read_text(encoding="utf-8"))
        vocabulary = set((out / names.VOCABULARY_FILE).read_text(encoding="utf-8").split("\n")) - {""}
        pipeline, _ = load_model(work / "model")
        domain_file = work / "documentation.tsv"  # through the reader of `stsmon traffic --shift file:PATH`
        domain_file.write_text("".join(f"{a}\t{b}\n" for a, b in documentation_pairs(len(test))), encoding="utf-8")
        domain = traffic_shift.read_domain_file(domain_file)
    scorer = Scorer(pipeline, vocabulary, baseline, constraints)
    clean = scorer.columns(test)
    shifts = {
        "mismatched": scorer.columns(traffic_shift.mismatched(test, seed=args.seed)),
        "truncated": scorer.columns(traffic_shift.truncated(test)),
        "another domain": scorer.columns(domain),
    }
    prepared = time.perf_counter() - started
    n_val = baseline["dataset"]["item_count"]
    print(f"MSRP: model trained on {len(fit_idx)} pairs, baseline on {n_val} validation pairs, "
          f"{len(test)} test pairs, {len(domain)} documentation pairs; {len(clean)} watched features; "
          f"seed {args.seed}; {args.windows} in-distribution and {args.shifted_windows} shifted windows per cell; "
          f"load average {os.getloadavg()[0]:.1f}; model and features {prepared:.0f} s")
    for size in args.size:
        print()
        report_size(scorer, clean, shifts, size, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def report_size(scorer: Scorer, clean, shifts, size: int, args) -> None:
    rng = np.random.default_rng([args.seed, size])
    n_test = len(clean[0][2])
    clean_largest: dict[str, list[float]] = {"Simple": [], "Robust": []}
    other_kinds: dict[str, int] = {k: 0 for k in data_quality.CHECK_TYPES if k != data_quality.CHECK_DRIFT}
    top: dict[str, int] = {}
    for _ in range(args.windows):
        largest, ranked, kinds = scorer.check(window(clean, rng.choice(n_test, size=size, replace=False)))
        for method in largest:
            clean_largest[method].append(largest[method])
        top[ranked["Simple"][0]] = top.get(ranked["Simple"][0], 0) + 1
        for kind in kinds:
            other_kinds[kind] += 1
    shifted_largest: dict[tuple[str, float], dict[str, list[float]]] = {}
    shifted_top: dict[str, dict[str, int]] = {}
    for label, columns in shifts.items():
        for fraction in FRACTIONS:
            got = shifted_largest.setdefault((label, fraction), {"Simple": [], "Robust": []})
            for _ in range(args.shifted_windows):
                largest, ranked, _ = scorer.check(mix(columns, clean, size, fraction, rng))
                for method in largest:
                    got[method].append(largest[method])
                if fraction == 1.0:
                    counts = shifted_top.setdefault(label, {})
                    counts[ranked["Simple"][0]] = counts.get(ranked["Simple"][0], 0) + 1

    print(f"### Windows of {size} requests")
    print()
    print("In-distribution windows with a violation of another kind: "
          + ", ".join(f"{k} {v} of {args.windows}" for k, v in other_kinds.items()))
    print()
    header = ["method", "threshold", "false alarms (95 % CI)"] + \
        [f"{label} {fraction:.0%}" for label in shifts for fraction in FRACTIONS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for method, thresholds in THRESHOLDS.items():
        for threshold in thresholds:
            alarms = sum(1 for d in clean_largest[method] if d > threshold)
            cells = [method, f"{threshold:g}", rate_cell(alarms, args.windows)]
            for label in shifts:
                for fraction in FRACTIONS:
                    values = shifted_largest[(label, fraction)][method]
                    cells.append(f"{sum(1 for d in values if d > threshold) / len(values):.0%}")
            print("| " + " | ".join(cells) + " |")
    print()
    for method in ("Simple", "Robust"):
        q = np.quantile(clean_largest[method], [0.5, 0.9, 0.99, 1.0])
        print(f"- {method}: largest distance over the features of an in-distribution window: median {q[0]:.3f}, "
              f"90th percentile {q[1]:.3f}, 99th {q[2]:.3f}, max {q[3]:.3f}")
    print("- the feature farthest from the baseline, in-distribution: "
          + ", ".join(f"{f} {c}" for f, c in sorted(top.items(), key=lambda x: -x[1])[:3]))
    for label, counts in shifted_top.items():
        print(f"- the feature farthest from the baseline, {label} (100 %): "
              + ", ".join(f"{f} {c}" for f, c in sorted(counts.items(), key=lambda x: -x[1])[:3]))

if __name__ == "__main__":
    main()
