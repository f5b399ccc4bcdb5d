"""Shifted traffic: pairs that no longer look like the training data, for the label-free drill.

``stsmon traffic --shift KIND`` sends these instead of the input as it is, and
``bench/data_quality_thresholds.py`` measures the data-quality check's
detection power on exactly the same transformations:

- ``mismatched``: every pair's second sentence is another pair's (a seeded
  derangement: no pair keeps its own), as when a client joins the wrong rows;
- ``truncated``: each sentence cut to the first half of its words (at least
  one word), as when a client truncates text;
- ``file:PATH``: another domain, the pairs of a UTF-8 text file instead of
  the input (:func:`read_domain_file`).

Shifted pairs carry no true label (the drill is label-free). Standard library only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

MISMATCHED = "mismatched"
TRUNCATED = "truncated"
FILE_PREFIX = "file:"
KINDS = (MISMATCHED, TRUNCATED)


@dataclass(frozen=True)
class Shift:
    """A parsed ``--shift``: ``kind`` is ``mismatched``, ``truncated`` or ``file`` (then ``path`` is set)."""

    kind: str
    path: Path | None = None

    def describe(self) -> str:
        return f"another domain from {self.path}" if self.kind == "file" else f"{self.kind} pairs"


def parse_shift(text: str) -> Shift:
    """``mismatched``, ``truncated`` or ``file:PATH``; UsageError naming the choices otherwise."""
    if text in KINDS:
        return Shift(text)
    if text.startswith(FILE_PREFIX) and text[len(FILE_PREFIX):].strip():
        return Shift("file", Path(text[len(FILE_PREFIX):]))
    raise UsageError(f"--shift {text!r} is not one of {', '.join(KINDS)} or {FILE_PREFIX}PATH "
                     "(a file of pairs from another domain)")


def mismatched(pairs: list[tuple[str, str]], *, seed: int = 0) -> list[tuple[str, str]]:
    """Each pair's second sentence replaced by another pair's: pair ``order[k]`` gets the second
    sentence of ``order[k + 1]`` (cyclically) for a seeded permutation ``order``, so none keeps its own."""
    if len(pairs) < 2:
        raise UsageError(f"--shift {MISMATCHED} needs at least 2 pairs to swap sentences between, got {len(pairs)}")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    second = [""] * len(pairs)
    for k, i in enumerate(order):
        second[i] = pairs[order[(k + 1) % len(order)]][1]
    return [(s1, s2) for (s1, _), s2 in zip(pairs, second)]


def truncate(sentence: str) -> str:
    """The first half of ``sentence``'s white-space separated words (at least one), joined by single spaces."""
    words = sentence.split()
    return " ".join(words[:max(1, len(words) // 2)])


def truncated(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Both sentences of every pair cut to the first half of their words."""
    return [(truncate(s1), truncate(s2)) for s1, s2 in pairs]


def read_domain_file(path: Path) -> list[tuple[str, str]]:
    """The pairs of a file of another domain's text (UTF-8; blank lines are skipped).

    Two layouts, told apart by the first non-blank line: with a tab, every line is
    ``sentence1<TAB>sentence2``; without, every line is one sentence and consecutive
    sentences pair up (lines 1+2, 3+4, ...). Errors name the file and the line.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"--shift file: {path} not found") from None
    except IsADirectoryError:
        raise UsageError(f"--shift file: {path} is a folder, not a file of sentence pairs") from None
    except OSError as exc:
        raise UsageError(f"--shift file: cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); --shift file: needs UTF-8") from None
    lines = [(no, line.rstrip("\r")) for no, line in enumerate(text.lstrip("\ufeff").split("\n"), 1)
             if line.strip()]
    if not lines:
        raise UsageError(f"{path} has no text: --shift file: needs sentence1<TAB>sentence2 lines "
                         "or one sentence per line")
    pairs: list[tuple[str, str]] = []
    if "\t" in lines[0][1]:
        for no, line in lines:
            cols = line.split("\t")
            if len(cols) != 2:
                raise UsageError(f"{path}:{no}: expected 2 tab-separated sentences (sentence1<TAB>sentence2), "
                                 f"got {len(cols)} columns")
            if not cols[0].strip() or not cols[1].strip():
                raise UsageError(f"{path}:{no}: sentence {1 if not cols[0].strip() else 2} is empty")
            pairs.append((cols[0], cols[1]))
        return pairs
    for no, line in lines:
        if "\t" in line:
            raise UsageError(f"{path}:{no}: a tab in a one-sentence-per-line file (line {lines[0][0]} has no tab); "
                             "use sentence1<TAB>sentence2 on every line, or no tabs at all")
    if len(lines) % 2:
        raise UsageError(f"{path}:{lines[-1][0]}: the last sentence has no partner (one sentence per line pairs "
                         f"consecutive lines; the file has {len(lines)})")
    return [(lines[i][1], lines[i + 1][1]) for i in range(0, len(lines), 2)]


def shifted_pairs(shift: Shift, pairs: list[tuple[str, str]], *, seed: int = 0) -> list[tuple[str, str]]:
    """The pairs to send for ``shift``: ``pairs`` transformed, or the file's pairs (``pairs`` unused)."""
    if shift.kind == MISMATCHED:
        return mismatched(pairs, seed=seed)
    if shift.kind == TRUNCATED:
        return truncated(pairs)
    assert shift.path is not None
    return read_domain_file(shift.path)
