"""Preprocess step: validate MSRP-layout sentence pairs and split them 70/15/15.

Input (``--input``, default ``/opt/ml/processing/input/data``): one file or a
folder of files (every non-hidden regular file, sorted by name) in the MSRP
layout - UTF-8, tab-separated, header
``Quality<TAB>#1 ID<TAB>#2 ID<TAB>#1 String<TAB>#2 String``. Strings contain
raw ``"`` characters that are *not* CSV quoting, so lines are split on tabs
with no quote processing. Blank lines are ignored; a UTF-8 byte-order mark and
``\\r\\n`` line ends are accepted.

The problem type follows from the labels (``--problem-type auto``): all 0/1 ->
BinaryClassification, real values (e.g. 0-5 similarity) -> Regression. A data
set whose labels are mostly 0/1 with a few other values is refused as mixed
label types (pass ``--problem-type Regression`` if it really is graded), and so
is a folder whose files disagree.

Output: ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv``
(headerless RFC 4180 ``label,sentence1,sentence2``), the raw pairs kept as
they are. The split is seeded (``--random-state``) and stratified by label for
classification; identical pairs (same two sentences, either order, ignoring
case and spacing) always land in the same split, so no test pair is also in
train. Rows keep their input order inside each split.

A user error (bad file, bad argument) prints one ``error: <file>:<line>: ...``
line and exits with code 2; outputs are written under temporary names and
renamed only when everything succeeded, so nothing partial is left behind.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from stscontracts import names

from steputil import AtomicWriter, UserError, parse_label, run_main, split_csv

HEADER = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
#: Share of 0/1 labels above which a few other values are taken as a mistake.
MIXED_LABEL_SHARE = 0.9


@dataclass(frozen=True)
class Pair:
    label: float
    sentence1: str
    sentence2: str
    where: str  # file:line


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_msrp_file(path: Path) -> list[Pair]:
    """The sentence pairs of one MSRP-layout file; :class:`UserError` names the first bad line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}:{_line_of_offset(data, exc.start)}: not UTF-8 text "
                        f"(byte 0x{data[exc.start]:02x})") from None
    lines = text.split("\n")
    numbered = [(i, line.rstrip("\r")) for i, line in enumerate(lines, 1)]
    numbered = [(i, line) for i, line in numbered if line.strip()]
    if not numbered:
        raise UserError(f"{path}: file is empty (expected the MSRP header and sentence pairs)")
    first_no, first = numbered[0]
    fields = tuple(f.strip() for f in first.split("\t"))
    if tuple(f.lower() for f in fields) != tuple(h.lower() for h in HEADER):
        raise UserError(f"{path}:{first_no}: expected the MSRP header {chr(9).join(HEADER)!r}, "
                        f"got {first[:100]!r}")
    if len(numbered) == 1:
        raise UserError(f"{path}: header only, no sentence pairs")
    pairs = []
    for no, line in numbered[1:]:
        where = f"{path}:{no}"
        fields = line.split("\t")
        if len(fields) != len(HEADER):
            hint = (" (strings must not be CSV-quoted: a quoted field may hide a tab or a line break)"
                    if '"' in line else "")
            raise UserError(f"{where}: expected {len(HEADER)} tab-separated columns, got {len(fields)}{hint}")
        label = parse_label(fields[0].strip(), where)
        s1, s2 = fields[3], fields[4]
        for name, s in (("#1 String", s1), ("#2 String", s2)):
            if not s.strip():
                raise UserError(f"{where}: {name} is empty")
        pairs.append(Pair(label, s1, s2, where))
    return pairs


def input_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise UserError(f"input folder {path} has no files")
        return files
    raise UserError(f"input not found: {path}")


def read_dataset(path: Path, problem_type: str = "auto") -> tuple[list[Pair], str]:
    """All pairs under ``path`` and the problem type (checked against the labels)."""
    files = input_files(path)
    per_file = [(f, read_msrp_file(f)) for f in files]
    pairs = [p for _, ps in per_file for p in ps]
    binary = [p.label in (0.0, 1.0) for p in pairs]
    if problem_type == "auto":
        if not all(binary):
            # Graded data is refused only when it looks like 0/1 data with mistakes,
            # or when one file is 0/1 and another is graded.
            first_real = next(p for p, b in zip(pairs, binary) if not b)
            share = sum(binary) / len(binary)
            if share >= MIXED_LABEL_SHARE:
                raise UserError(
                    f"{first_real.where}: mixed label types: {sum(binary)} of {len(pairs)} labels are 0/1 but "
                    f"this one is {first_real.label:g}; fix the label, or pass --problem-type "
                    f"{names.REGRESSION} if the data set is graded")
            binary_files = [f for f, ps in per_file if all(p.label in (0.0, 1.0) for p in ps)]
            if binary_files:
                raise UserError(
                    f"mixed label types: {binary_files[0]} has only 0/1 labels but "
                    f"{first_real.where} has {first_real.label:g}; pass --problem-type to choose")
            return pairs, names.REGRESSION
        return pairs, names.BINARY_CLASSIFICATION
    if problem_type == names.BINARY_CLASSIFICATION:
        bad = next((p for p, b in zip(pairs, binary) if not b), None)
        if bad is not None:
            raise UserError(f"{bad.where}: label {bad.label:g} is not 0 or 1, but the problem type is "
                            f"{names.BINARY_CLASSIFICATION}")
        return pairs, problem_type
    if problem_type == names.REGRESSION:
        return pairs, problem_type
    raise UserError(f"unknown --problem-type {problem_type!r}; expected auto, "
                    f"{names.BINARY_CLASSIFICATION} or {names.REGRESSION}")


def _pair_key(p: Pair) -> tuple[str, str]:
    a, b = (" ".join(s.lower().split()) for s in (p.sentence1, p.sentence2))
    return (a, b) if a <= b else (b, a)


def split_indices(pairs: Sequence[Pair], problem_type: str, ratios: tuple[float, float],
                  random_state: int) -> tuple[list[int], list[int], list[int]]:
    """Row indices of train, validation and test (each in input order).

    Identical pairs form one group that is assigned as a unit. For
    classification each label is split separately (stratified).
    """
    train_ratio, val_ratio = ratios
    groups: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault(_pair_key(p), []).append(i)
    strata: dict[object, list[list[int]]] = {}
    for members in groups.values():
        key = pairs[members[0]].label if problem_type == names.BINARY_CLASSIFICATION else "all"
        strata.setdefault(key, []).append(members)
    rng = np.random.default_rng(random_state)
    train, val, test = [], [], []
    for key in sorted(strata, key=str):
        stratum = strata[key]
        n = sum(len(g) for g in stratum)
        n_val = max(1, round(n * val_ratio))
        n_test = max(1, round(n * (1 - train_ratio - val_ratio)))
        what = f"label {key:g}" if key != "all" else "the data set"
        if n - n_val - n_test < 1 or len(stratum) < 3:
            raise UserError(f"{what} has only {n} distinct pair(s); need at least 3 to fill "
                            "train, validation and test")
        order = rng.permutation(len(stratum))
        placed = 0
        for gi in order:
            members = stratum[gi]
            if placed < n - n_val - n_test:
                train.extend(members)
            elif placed < n - n_test:
                val.extend(members)
            else:
                test.extend(members)
            placed += len(members)
        if not val or not test:  # only possible with large duplicate groups
            raise UserError(f"{what}: duplicate pairs leave the validation or test split empty")
    return sorted(train), sorted(val), sorted(test)


def preprocess(input_path: Path, train_dir: Path, validation_dir: Path, test_dir: Path, *,
               problem_type: str = "auto", train_ratio: float = 0.7, validation_ratio: float = 0.15,
               random_state: int = 42) -> dict:
    """Read, validate, split and write; returns a summary (counts, problem type)."""
    if not (0 < train_ratio < 1 and 0 < validation_ratio < 1 and train_ratio + validation_ratio < 1):
        raise UserError(f"--train-ratio {train_ratio} and --validation-ratio {validation_ratio} must be "
                        "in (0, 1) and leave a share for test")
    pairs, problem_type = read_dataset(input_path, problem_type)
    train, val, test = split_indices(pairs, problem_type, (train_ratio, validation_ratio), random_state)
    with AtomicWriter() as out:
        for folder, name, idx in ((train_dir, names.TRAIN_FILE, train),
                                  (validation_dir, names.VALIDATION_FILE, val),
                                  (test_dir, names.TEST_FILE, test)):
            rows = [pairs[i] for i in idx]
            out.write(folder / name, split_csv([p.label for p in rows],
                                               [(p.sentence1, p.sentence2) for p in rows]))
    summary = {"problem_type": problem_type, "pairs": len(pairs),
               "train": len(train), "validation": len(val), "test": len(test)}
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=Path("/opt/ml/processing/input/data"),
                        help="an MSRP-layout file or a folder of them (default: %(default)s)")
    parser.add_argument("--train-dir", type=Path, default=Path("/opt/ml/processing/train"))
    parser.add_argument("--validation-dir", type=Path, default=Path("/opt/ml/processing/validation"))
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"))
    parser.add_argument("--problem-type", default="auto",
                        choices=["auto", *names.PROBLEM_TYPES],
                        help="auto: 0/1 labels -> BinaryClassification, else Regression (default: auto)")
    parser.add_argument("--train-ratio", type=float, default=0.7)
    parser.add_argument("--validation-ratio", type=float, default=0.15,
                        help="test gets the rest (default 0.15)")
    parser.add_argument("--random-state", type=int, default=42, help="seed of the split (default: 42)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    summary = preprocess(args.input, args.train_dir, args.validation_dir, args.test_dir,
                         problem_type=args.problem_type, train_ratio=args.train_ratio,
                         validation_ratio=args.validation_ratio, random_state=args.random_state)
    print("preprocess: {pairs} pairs, {problem_type}: train {train}, validation {validation}, "
          "test {test}".format(**summary))


if __name__ == "__main__":
    sys.exit(run_main(main))
