"""Options shared by the commands, so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path

import click

from ..state import STATE_DIR_ENV, StateDir, default_state_dir

TARGETS = ("local", "aws")

target_option = click.option(
    "--target",
    type=click.Choice(TARGETS),
    default="local",
    show_default=True,
    help="Where to act: the local runtime, or the deployed AWS resources (uses your AWS credentials).",
)

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Local state folder. Default: ${STATE_DIR_ENV}, else ./.stsmon.",
)

context_option = click.option(
    "-c",
    "--context",
    "context",
    multiple=True,
    metavar="KEY=VALUE",
    help="Configuration override, like `cdk -c` (repeatable).",
)

assembly_option = click.option(
    "--assembly",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cdk.out"),
    show_default=True,
    help="The synthesized cloud assembly (cdk.out) to deploy or read.",
)


def resolve_state_dir(state_dir: Path | None) -> StateDir:
    """The StateDir for a ``--state-dir`` value (None = the default)."""
    return StateDir((state_dir or default_state_dir()).resolve())


def load_cli_config(context: tuple[str, ...] | list[str] = ()):  # -> stsmon.config.Config
    """The configuration as the CLI sees it: defaults < ./cdk.json context <
    ./.env < environment < ``-c KEY=VALUE`` (the same layers as ``app.py``)."""
    import os

    from ..config import load_config, parse_context_pairs, read_cdk_json_context

    return load_config(
        context=parse_context_pairs(list(context)),
        env=os.environ,
        dotenv_path=Path(".env"),
        cdk_json_context=read_cdk_json_context(Path("cdk.json")),
    )
