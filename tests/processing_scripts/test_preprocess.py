"""preprocess.py: MSRP parsing, validation errors, and the split's invariants."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from stscontracts import names
import preprocess
from script_runs import run_script
from pairs_fixture import HEADER, binary_rows, graded_rows, msrp_text, write_msrp


def read_rows(folder: Path, name: str) -> list[tuple[str, str, str]]:
    with open(folder / name, encoding="utf-8", newline="") as fh:
        return [tuple(r) for r in csv.reader(fh)]


def run(tmp_path: Path, input_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "out"
    code = preprocess.run_main(preprocess.main, [
        "--input", str(input_path), "--train-dir", str(out / "train"),
        "--validation-dir", str(out / "validation"), "--test-dir", str(out / "test"), *extra])
    splits = {}
    if code == 0:
        splits = {name: read_rows(out / name, f"{name}.csv") for name in ("train", "validation", "test")}
    return code, splits


def test_split_keeps_every_row_once_and_separates_pairs(tmp_path):
    rows = binary_rows()
    code, splits = run(tmp_path, write_msrp(tmp_path / "in.txt", rows))
    assert code == 0
    written = Counter(r for part in splits.values() for r in part)
    expected = Counter((label, s1, s2) for label, _, _, s1, s2 in rows)
    assert written == expected  # nothing lost, nothing duplicated, strings untouched
    train = {(s1, s2) for _, s1, s2 in splits["train"]}
    for other in ("validation", "test"):
        assert not train & {(s1, s2) for _, s1, s2 in splits[other]}
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 32, "validation": 8, "test": 8}  # 70/15/15 per label of 24


def test_split_is_stratified_and_keeps_input_order(tmp_path):
    rows = binary_rows()
    _, splits = run(tmp_path, write_msrp(tmp_path / "in.txt", rows))
    for part in splits.values():
        labels = Counter(label for label, _, _ in part)
        assert labels["0"] == labels["1"]  # the input is balanced, so is every split
        order = [next(i for i, r in enumerate(rows) if (r[3], r[4]) == (s1, s2)) for _, s1, s2 in part]
        assert order == sorted(order)


def test_split_is_deterministic_under_a_seed(tmp_path):
    src = write_msrp(tmp_path / "in.txt", binary_rows())
    _, a = run(tmp_path / "a", src, "--random-state", "7")
    _, b = run(tmp_path / "b", src, "--random-state", "7")
    _, c = run(tmp_path / "c", src, "--random-state", "8")
    assert a == b
    assert a != c


def test_identical_pairs_land_in_the_same_split(tmp_path):
    rows = binary_rows()
    # The same pair again, reversed and re-spaced: must not straddle train and test.
    dupes = [(label, i1 + "9", i2 + "9", "  " + s2.upper(), s1) for label, i1, i2, s1, s2 in rows[:10]]
    _, splits = run(tmp_path, write_msrp(tmp_path / "in.txt", rows + dupes))
    where = {}
    for name, part in splits.items():
        for _, s1, s2 in part:
            key = tuple(sorted(" ".join(s.lower().split()) for s in (s1, s2)))
            where.setdefault(key, set()).add(name)
    assert all(len(found) == 1 for found in where.values())


def test_raw_quotes_survive_byte_for_byte(tmp_path):
    rows = binary_rows()
    tricky = [("1", "1", "2", 'He said "no" twice, then "yes', '"Yes," he said'),
              ("0", "3", "4", '""', 'a "quoted, comma" word')]
    _, splits = run(tmp_path, write_msrp(tmp_path / "in.txt", rows + tricky))
    written = {(s1, s2) for part in splits.values() for _, s1, s2 in part}
    assert {(t[3], t[4]) for t in tricky} <= written


def test_graded_labels_make_a_regression_split(tmp_path, capsys):
    code, splits = run(tmp_path, write_msrp(tmp_path / "in.txt", graded_rows()))
    assert code == 0
    assert "Regression" in capsys.readouterr().out
    labels = [float(label) for part in splits.values() for label, _, _ in part]
    assert sorted(labels) == sorted(float(r[0]) for r in graded_rows())


def test_a_folder_of_files_is_read_in_name_order(tmp_path):
    rows = binary_rows()
    folder = tmp_path / "data"
    write_msrp(folder / "b.txt", rows[24:])
    write_msrp(folder / "a.txt", rows[:24])
    (folder / ".hidden").write_text("ignored")
    code, splits = run(tmp_path, folder)
    assert code == 0
    assert sum(len(p) for p in splits.values()) == len(rows)


def test_bom_and_crlf_are_accepted(tmp_path):
    text = "\ufeff" + msrp_text(binary_rows()).replace("\n", "\r\n")
    src = tmp_path / "in.txt"
    src.write_text(text, encoding="utf-8", newline="")
    code, splits = run(tmp_path, src)
    assert code == 0
    assert all(not s2.endswith("\r") for part in splits.values() for _, _, s2 in part)


def test_forced_regression_accepts_binary_labels(tmp_path, capsys):
    code, _ = run(tmp_path, write_msrp(tmp_path / "in.txt", binary_rows()), "--problem-type", "Regression")
    assert code == 0
    assert "Regression" in capsys.readouterr().out


BAD_INPUTS = {
    "empty file": ("", "file is empty", None),
    "header only": (HEADER + "\n", "header only", None),
    "wrong header": ("label\ts1\ts2\n1\ta\tb\n", "expected the MSRP header", 1),
    "missing column": (HEADER + "\n1\t1\t2\tonly one sentence\n", "expected 5 tab-separated columns, got 4", 2),
    "non-numeric label": (HEADER + "\nyes\t1\t2\ta\tb\n", "label 'yes' is not a number", 2),
    "quoted label": (HEADER + '\n"1"\t1\t2\ta\tb\n', "label '\"1\"' is not a number", 2),
    "quoted string hiding a tab": (HEADER + '\n1\t1\t2\t"a\tb"\tc\n', "strings must not be CSV-quoted", 2),
    "quoted string over two lines": (HEADER + '\n1\t1\t2\ta\t"b\nc"\n', "got 1", 3),
    "empty sentence": (HEADER + "\n1\t1\t2\t \tb\n", "#1 String is empty", 2),
    "infinite label": (HEADER + "\ninf\t1\t2\ta\tb\n", "not a finite number", 2),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path, capsys, case):
    text, message, line = BAD_INPUTS[case]
    rows = binary_rows()
    if line is not None and case != "wrong header":
        # Put the bad line after some good rows, so the line number is meaningful.
        head, bad = text.split("\n", 1)
        text = msrp_text(rows[:5]) + bad
        line += 5
    src = tmp_path / "bad.txt"
    src.write_text(text, encoding="utf-8")
    code, _ = run(tmp_path, src)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert message in err
    assert f"{src}:{line}:" in err if line else str(src) in err
    assert not (tmp_path / "out").exists()


def test_mixed_label_types_in_one_file(tmp_path, capsys):
    rows = binary_rows()
    rows[7] = ("0.5", *rows[7][1:])
    src = write_msrp(tmp_path / "in.txt", rows)
    code, _ = run(tmp_path, src)
    err = capsys.readouterr().err
    assert code == 2
    assert f"{src}:9: mixed label types" in err and "--problem-type Regression" in err
    assert not (tmp_path / "out").exists()


def test_mixed_label_types_across_files(tmp_path, capsys):
    folder = tmp_path / "data"
    write_msrp(folder / "a.txt", binary_rows())
    write_msrp(folder / "b.txt", graded_rows())
    code, _ = run(tmp_path, folder)
    err = capsys.readouterr().err
    assert code == 2
    assert "mixed label types" in err and "a.txt" in err and "b.txt" in err


def test_binary_problem_type_refuses_graded_labels(tmp_path, capsys):
    src = write_msrp(tmp_path / "in.txt", graded_rows())
    code, _ = run(tmp_path, src, "--problem-type", "BinaryClassification")
    assert code == 2
    assert f"{src}:2: label 4.2 is not 0 or 1" in capsys.readouterr().err


def test_non_utf8_input(tmp_path, capsys):
    src = tmp_path / "latin1.txt"
    src.write_bytes((msrp_text(binary_rows()[:3]) + "1\t1\t2\tcaf\xe9\tb\n").encode("latin-1"))
    code, _ = run(tmp_path, src)
    assert code == 2
    assert f"{src}:5: not UTF-8" in capsys.readouterr().err


def test_too_few_pairs_per_label(tmp_path, capsys):
    rows = binary_rows()[:4]  # two per label
    code, _ = run(tmp_path, write_msrp(tmp_path / "in.txt", rows))
    assert code == 2
    assert "need at least 3" in capsys.readouterr().err


def test_missing_input_and_bad_ratios(tmp_path, capsys):
    code, _ = run(tmp_path, tmp_path / "nope")
    assert code == 2 and "input not found" in capsys.readouterr().err
    code, _ = run(tmp_path, write_msrp(tmp_path / "in.txt", binary_rows()), "--train-ratio", "0.9",
                  "--validation-ratio", "0.2")
    assert code == 2 and "leave a share for test" in capsys.readouterr().err


def test_script_exit_code_and_default_paths(tmp_path, script_env):
    # SageMaker runs the script with its defaults; a bad input exits 2 with one line.
    src = tmp_path / "empty.txt"
    src.write_text("")
    proc = run_script("preprocess.py", ["--input", str(src), "--train-dir", str(tmp_path / "t"),
                                        "--validation-dir", str(tmp_path / "v"), "--test-dir",
                                        str(tmp_path / "e")], script_env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {src}: file is empty (expected the MSRP header and sentence pairs)"
    defaults = preprocess.parse_args([])
    assert str(defaults.input) == "/opt/ml/processing/input/data"
    assert str(defaults.train_dir) == "/opt/ml/processing/train"
    assert str(defaults.validation_dir) == "/opt/ml/processing/validation"
    assert str(defaults.test_dir) == "/opt/ml/processing/test"
    assert names.TRAIN_FILE == "train.csv"
