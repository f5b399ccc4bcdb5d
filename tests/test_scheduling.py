"""The suite's schedule over xdist workers (tests/scheduling.py) stays true to the files it names."""

from __future__ import annotations

import ast
from pathlib import Path

import scheduling

REPO = Path(__file__).resolve().parent.parent

#: Session fixtures that are expensive to build, and the group whose files may use them.
SESSION_FIXTURES = {
    "binary_run": "tests/processing_scripts[binary_run]",
    "regression_run": "tests/processing_scripts[binary_run]",
    "dev": "tests/stacks[synth]",
    "prod": "tests/stacks[synth]",
    "toy_server": "tests/stsmon/endpoint[toy_server]",
}


def fixtures_used(path: Path) -> set[str]:
    """Argument names of the test functions and fixtures defined in ``path``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            names.update(a.arg for a in node.args.args)
    return names


def test_every_named_file_exists():
    named = [p for paths in scheduling.SHARED.values() for p in paths]
    named += [u for u in scheduling.LONGEST_FIRST if u not in scheduling.SHARED]
    assert [p for p in named if not (REPO / p).is_file()] == []


def test_files_using_an_expensive_session_fixture_share_its_unit():
    wrong = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        rel = path.relative_to(REPO).as_posix()
        for fixture in sorted(fixtures_used(path) & SESSION_FIXTURES.keys()):
            if scheduling.work_unit(rel) != SESSION_FIXTURES[fixture]:
                wrong.append(f"{rel} uses {fixture}: add it to scheduling.SHARED[{SESSION_FIXTURES[fixture]!r}]")
    assert wrong == []


def test_order_puts_the_longest_units_first_and_keeps_files_together():
    class Item:
        def __init__(self, nodeid):
            self.nodeid = nodeid

    ids = ["tests/a.py::t1", "tests/test_demo.py::t1", "tests/a.py::t2", "tests/test_demo.py::t2",
           "tests/processing_scripts/test_pipeline.py::t", "tests/b.py::t",
           "tests/processing_scripts/test_inference.py::t"]
    items = [Item(i) for i in ids]
    scheduling.order_items(items)
    assert [i.nodeid for i in items] == [
        "tests/test_demo.py::t1", "tests/test_demo.py::t2",
        "tests/processing_scripts/test_pipeline.py::t", "tests/processing_scripts/test_inference.py::t",
        "tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t",
    ]
