"""One code path for both targets: no command branches on ``--target``.

The commands (``stsmon/commands/``) get their clients and the target's runtime from
``stsmon.clients.make_clients``; only the factory, the local runtime and ``stsmon/aws/``
know which target it is. This scan fails on any comparison with the target names
(``target == "local"``, ``"aws" in ...``, ``aws = target == "aws"``) in a command.
"""

from __future__ import annotations

import ast
from pathlib import Path

COMMANDS = Path(__file__).resolve().parent.parent / "stsmon" / "commands"
TARGET_NAMES = {"local", "aws"}


def target_branches(source: str) -> list[tuple[int, str]]:
    """(line, code) of every comparison in ``source`` that involves a target name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in TARGET_NAMES for o in operands):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Match):
            for case in node.cases:
                if any(isinstance(n, ast.Constant) and n.value in TARGET_NAMES for n in ast.walk(case.pattern)):
                    found.append((case.pattern.lineno, ast.unparse(case.pattern)))
    return found


def test_no_command_branches_on_the_target():
    offenders = [f"{path.name}:{line}: {code}" for path in sorted(COMMANDS.glob("*.py"))
                 for line, code in target_branches(path.read_text(encoding="utf-8"))]
    assert not offenders, "commands branching on the target (use the clients / the target's runtime):\n" + "\n".join(offenders)


def test_the_scan_finds_each_form():
    code = 'if target == "local":\n    pass\naws = target == "aws"\nx = "aws" != t\nmatch t:\n    case "local":\n        pass\n'
    assert sorted(line for line, _ in target_branches(code)) == [1, 3, 4, 6]
    assert target_branches('TARGETS = ("local", "aws")\nif target == other:\n    pass\n') == []
