"""Staging the step scripts: literal names, a reproducible archive, a content hash that moves with the code."""

from __future__ import annotations

import gzip
import tarfile

import pytest

import stscontracts
from stacks.constructs.step_code import content_hash, script_files, sourcedir_archive, stage


def _scripts(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_stage_copies_scripts_and_writes_a_reproducible_archive(tmp_path):
    src = _scripts(tmp_path / "src", **{"train.py": "print(1)\n", "evaluate.py": "X = 1\n", "__init__.py": "", "notes.txt": "x"})
    first, second = tmp_path / "a", tmp_path / "b"
    hash_a = stage(src, first, "sourcedir.tar.gz", contracts=False)
    (src / "train.py").touch()  # a new mtime must not change anything
    hash_b = stage(src, second, "sourcedir.tar.gz", contracts=False)
    assert hash_a == hash_b and len(hash_a) == 16
    assert sorted(p.name for p in first.iterdir()) == ["evaluate.py", "sourcedir.tar.gz", "train.py"]
    assert (first / "sourcedir.tar.gz").read_bytes() == (second / "sourcedir.tar.gz").read_bytes()
    with tarfile.open(first / "sourcedir.tar.gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["evaluate.py", "train.py"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(315532800, 0, 0, "", 0o644)}
    header = (first / "sourcedir.tar.gz").read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_the_contracts_package_ships_with_the_scripts(tmp_path):
    src = _scripts(tmp_path / "src", **{"train.py": "print(1)\n"})
    staged = tmp_path / "staged"
    stage(src, staged, "sourcedir.tar.gz")
    expected = [name for name, _ in stscontracts.package_files()]
    assert "stscontracts/names.py" in expected and "stscontracts/config.py" in expected
    for name, path in stscontracts.package_files():
        assert (staged / name).read_bytes() == path.read_bytes()
    with tarfile.open(staged / "sourcedir.tar.gz") as tar:
        assert tar.getnames() == sorted(["train.py", *expected])


def test_any_script_or_contract_change_moves_the_hash(tmp_path):
    src = _scripts(tmp_path / "src", **{"train.py": "print(1)\n", "evaluate.py": "pass\n"})
    before = content_hash(script_files(src))
    (src / "train.py").write_text("print(2)\n")
    edited = content_hash(script_files(src))
    (src / "train.py").rename(src / "train2.py")
    renamed = content_hash(script_files(src))
    files = script_files(src)
    contract_name, contract_path = next(f for f in files if f[0] == "stscontracts/names.py")
    changed_copy = tmp_path / "names.py"
    changed_copy.write_bytes(contract_path.read_bytes() + b"# changed\n")
    contract_changed = content_hash([(n, changed_copy if n == contract_name else p) for n, p in files])
    assert len({before, edited, renamed, contract_changed}) == 4


def test_archive_round_trips(tmp_path):
    src = _scripts(tmp_path, **{"a.py": "A\n", "b.py": "B\n"})
    data = sourcedir_archive(script_files(src))
    assert gzip.decompress(data)  # a valid gzip stream
    extracted = tmp_path / "x"
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tar:
        tar.extractall(extracted, filter="data")
    assert (extracted / "a.py").read_text() == "A\n" and (extracted / "b.py").read_text() == "B\n"
    assert (extracted / "stscontracts" / "names.py").read_bytes() == (stscontracts.PACKAGE_DIR / "names.py").read_bytes()


def test_a_folder_without_scripts_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no step scripts"):
        script_files(tmp_path)
