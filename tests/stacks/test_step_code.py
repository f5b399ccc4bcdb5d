"""Staging the step scripts: literal names, a reproducible archive, a content hash that moves with the code."""

from __future__ import annotations

import gzip
import tarfile

import pytest

from stacks.constructs.step_code import content_hash, script_files, sourcedir_archive, stage


def _scripts(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_stage_copies_scripts_and_writes_a_reproducible_archive(tmp_path):
    src = _scripts(tmp_path / "src", **{"train.py": "print(1)\n", "contract.py": "X = 1\n", "__init__.py": "", "notes.txt": "x"})
    first, second = tmp_path / "a", tmp_path / "b"
    hash_a = stage(src, first, "sourcedir.tar.gz")
    (src / "train.py").touch()  # a new mtime must not change anything
    hash_b = stage(src, second, "sourcedir.tar.gz")
    assert hash_a == hash_b and len(hash_a) == 16
    assert sorted(p.name for p in first.iterdir()) == ["contract.py", "sourcedir.tar.gz", "train.py"]
    assert (first / "sourcedir.tar.gz").read_bytes() == (second / "sourcedir.tar.gz").read_bytes()
    with tarfile.open(first / "sourcedir.tar.gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["contract.py", "train.py"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(315532800, 0, 0, "", 0o644)}
    header = (first / "sourcedir.tar.gz").read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_any_script_change_moves_the_hash(tmp_path):
    src = _scripts(tmp_path / "src", **{"train.py": "print(1)\n", "evaluate.py": "pass\n"})
    before = content_hash(script_files(src))
    (src / "train.py").write_text("print(2)\n")
    edited = content_hash(script_files(src))
    (src / "train.py").rename(src / "train2.py")
    renamed = content_hash(script_files(src))
    assert len({before, edited, renamed}) == 3


def test_archive_round_trips(tmp_path):
    src = _scripts(tmp_path, **{"a.py": "A\n", "b.py": "B\n"})
    data = sourcedir_archive(script_files(src))
    assert gzip.decompress(data)  # a valid gzip stream
    extracted = tmp_path / "x"
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tar:
        tar.extractall(extracted, filter="data")
    assert (extracted / "a.py").read_text() == "A\n" and (extracted / "b.py").read_text() == "B\n"


def test_a_folder_without_scripts_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no step scripts"):
        script_files(tmp_path)
