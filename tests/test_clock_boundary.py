"""Time is an input: below the CLI nothing reads the wall clock; it takes a clock (stsmon/clock.py).

Scans the source with ``ast`` for reads of the current time — ``datetime.now/utcnow/today``,
``date.today``, ``time.time/time_ns``, and ``time.gmtime/localtime/ctime/strftime`` without an
explicit time — and fails on any outside the places where "now" may enter:

- ``stsmon/clock.py`` (``SystemClock``), which the CLI builds in ``commands/common.cli_clock``;
- a step script's ``main`` (a script's command line is its CLI; it passes the time down);
- the few places listed in :data:`ALLOWED`, each with its reason.

``time.monotonic``/``perf_counter`` measure durations, not dates, and are not reads of "now".
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("stsmon", "processing_scripts", "stacks", "pipeline_code", "app.py")

#: (file, enclosing function) -> why the wall clock is right there.
ALLOWED: dict[tuple[str, str], str] = {
    ("stsmon/clock.py", "SystemClock.now"): "the one wall clock, built by the CLI and process entry points",
}

DATETIME_READS = {"now", "utcnow", "today"}
TIME_READS_ALWAYS = {"time", "time_ns"}
TIME_READS_WITHOUT_ARG = {"gmtime": 0, "localtime": 0, "ctime": 0, "strftime": 1}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def wall_clock_reads(path: Path) -> list[tuple[int, str, str]]:
    """(line, enclosing function, call) of every read of the current time in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, scope: list[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = scope + [node.name]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, attr = _dotted(node.func.value), node.func.attr
            last = owner.rsplit(".", 1)[-1]
            nargs = len(node.args) + len(node.keywords)
            hit = (
                (last in ("datetime", "date") and attr in DATETIME_READS)
                or (last == "time" and attr in TIME_READS_ALWAYS)
                or (last == "time" and attr in TIME_READS_WITHOUT_ARG and nargs <= TIME_READS_WITHOUT_ARG[attr])
            )
            if hit:
                found.append((node.lineno, ".".join(scope) or "<module>", f"{owner}.{attr}()"))
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, [])
    return found


def _sources() -> list[Path]:
    paths: list[Path] = []
    for name in SCANNED:
        root = REPO / name
        paths.extend(sorted(root.rglob("*.py")) if root.is_dir() else [root])
    return paths


def _allowed(rel: str, function: str) -> bool:
    if (rel, function) in ALLOWED:
        return True
    # A step script's command line is its CLI: its main() may read the clock and pass it down.
    return rel.startswith("processing_scripts/") and function == "main"


def test_nothing_below_the_cli_reads_the_wall_clock():
    offenders = []
    for path in _sources():
        rel = path.relative_to(REPO).as_posix()
        for line, function, call in wall_clock_reads(path):
            if not _allowed(rel, function):
                offenders.append(f"{rel}:{line} {function}: {call}")
    assert not offenders, "wall-clock reads below the CLI (take a Clock or a `now` instead):\n" + "\n".join(offenders)


@pytest.mark.parametrize("code, expected", [
    ("from datetime import datetime\ndef f():\n    return datetime.now()\n", [(3, "f", "datetime.now()")]),
    ("import datetime\nx = datetime.datetime.utcnow()\n", [(2, "<module>", "datetime.datetime.utcnow()")]),
    ("import time\nclass A:\n    def g(self):\n        return time.time()\n", [(4, "A.g", "time.time()")]),
    ("import time\ntime.strftime('%H')\ntime.strftime('%H', time.gmtime(0))\n", [(2, "<module>", "time.strftime()")]),
    ("from datetime import date\ndate.today()\n", [(2, "<module>", "date.today()")]),
    ("import time\ntime.monotonic()\ntime.gmtime(5)\n", []),
])
def test_the_scan_finds_each_kind_of_read(tmp_path, code, expected):
    path = tmp_path / "m.py"
    path.write_text(code)
    assert wall_clock_reads(path) == expected
