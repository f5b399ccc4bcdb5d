"""Shifted traffic (stsmon/traffic_shift.py): the transformations, the domain file and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stsmon import traffic_shift
from stsmon.errors import UsageError

PAIRS = [(f"first sentence number {i} here", f"second sentence number {i} there") for i in range(7)]


def test_mismatched_gives_every_pair_another_pairs_second_sentence_deterministically():
    out = traffic_shift.mismatched(PAIRS, seed=3)
    assert [a for a, _ in out] == [a for a, _ in PAIRS]
    assert sorted(b for _, b in out) == sorted(b for _, b in PAIRS)  # a permutation of the second sentences
    assert all(b != own for (_, b), (_, own) in zip(out, PAIRS))  # none keeps its own
    assert out == traffic_shift.mismatched(PAIRS, seed=3)
    assert out != traffic_shift.mismatched(PAIRS, seed=4)
    with pytest.raises(UsageError, match="at least 2 pairs"):
        traffic_shift.mismatched(PAIRS[:1])


def test_truncated_keeps_the_first_half_of_the_words():
    assert traffic_shift.truncate("one two three four five") == "one two"
    assert traffic_shift.truncate("single") == "single"
    assert traffic_shift.truncate("  a   b  c d ") == "a b"
    assert traffic_shift.truncated([("a b c d", "e f")]) == [("a b", "e")]


def test_parse_shift():
    assert traffic_shift.parse_shift("mismatched") == traffic_shift.Shift("mismatched")
    assert traffic_shift.parse_shift("file:/x/y.tsv") == traffic_shift.Shift("file", Path("/x/y.tsv"))
    for bad in ("shuffled", "file:", "file: ", "FILE:/x"):
        with pytest.raises(UsageError, match="is not one of mismatched, truncated or file:PATH"):
            traffic_shift.parse_shift(bad)


def test_domain_file_tsv_and_one_sentence_per_line(tmp_path):
    tsv = tmp_path / "news.tsv"
    tsv.write_text('\ufeffThe cat sat.\tA cat was sitting.\r\n\nHe said "no".\tShe said yes.\n', encoding="utf-8")
    assert traffic_shift.read_domain_file(tsv) == [("The cat sat.", "A cat was sitting."),
                                                   ('He said "no".', "She said yes.")]
    text = tmp_path / "doc.txt"
    text.write_text("One.\nTwo.\n\nThree.\nFour.\n", encoding="utf-8")
    assert traffic_shift.read_domain_file(text) == [("One.", "Two."), ("Three.", "Four.")]


@pytest.mark.parametrize("content, message", [
    (b"a\tb\nc\td\te\n", "{path}:2: expected 2 tab-separated sentences (sentence1<TAB>sentence2), got 3 columns"),
    (b"a\tb\n\nc\n", "{path}:3: expected 2 tab-separated sentences"),
    (b"a\tb\n \tc\n", "{path}:2: sentence 1 is empty"),
    (b"one\ntwo\nthree\tx\nfour\n", "{path}:3: a tab in a one-sentence-per-line file"),
    (b"one\ntwo\n\nthree\n", "{path}:4: the last sentence has no partner"),
    (b"ok\tfine\nbad \xff byte\tx\n", "{path}:2: not UTF-8 text (byte 12)"),
    (b"\n  \n", "{path} has no text"),
])
def test_bad_domain_file_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "other.tsv"
    path.write_bytes(content)
    with pytest.raises(UsageError) as err:
        traffic_shift.read_domain_file(path)
    assert message.format(path=path) in str(err.value)


def test_missing_domain_file_or_folder(tmp_path):
    with pytest.raises(UsageError, match=f"--shift file: {tmp_path / 'no.tsv'} not found"):
        traffic_shift.read_domain_file(tmp_path / "no.tsv")
    with pytest.raises(UsageError, match="is a folder"):
        traffic_shift.read_domain_file(tmp_path)
