"""Every `stsmon ...` command line in the README parses with the real CLI: the
README and `--help` name the same commands and options."""

from __future__ import annotations

import re
import shlex

import click
import pytest

from stsmon.cli import cli

FENCE = re.compile(r"```(?:bash)?\n(.*?)```", re.S)


def readme_command_lines(text: str) -> list[str]:
    lines = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line.startswith("stsmon "):
                lines.append(line)
    return lines


def parse(argv: list[str]) -> click.Context:
    """Parse ``argv`` down to the leaf command without running anything: an
    unknown command or option, or a bad choice, raises a click error."""
    parent = click.Context(cli, info_name="stsmon")
    command: click.Command = cli
    args = list(argv)
    while isinstance(command, click.Group):
        assert args, f"{' '.join(argv)}: a group needs a subcommand"
        sub = command.get_command(parent, args[0])
        assert sub is not None, f"unknown command {args[0]!r} in {' '.join(argv)}"
        name, args = args[0], args[1:]
        if isinstance(sub, click.Group):
            parent = click.Context(sub, info_name=name, parent=parent)
            command = sub
            continue
        return sub.make_context(name, args, parent=parent)
    raise AssertionError("unreachable")


def test_the_readme_shows_the_commands(repo_root):
    lines = readme_command_lines((repo_root / "README.md").read_text())
    assert len(lines) >= 15
    shown = {shlex.split(line)[1] for line in lines}
    assert {"demo", "data", "doctor", "synth", "deploy", "train", "traffic", "ground-truth", "monitor", "report",
            "status", "cleanup"} <= shown


@pytest.mark.parametrize("line", readme_command_lines(open(__import__("pathlib").Path(__file__).resolve().parents[1]
                                                          / "README.md").read()))
def test_readme_command_line_parses(line):
    parse(shlex.split(line)[1:])


@pytest.mark.parametrize("argv", [["train", "--bogus"], ["monitor", "walk"], ["traffic", "--target", "gcp"],
                                  ["ground-truth", "--mode", "psychic"]])
def test_a_line_the_cli_does_not_know_fails_the_check(argv):
    with pytest.raises((click.UsageError, AssertionError)):
        parse(argv)
