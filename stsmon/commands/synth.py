"""``stsmon synth``: synthesize the CDK app into ``cdk.out`` with the pinned CDK CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import StsmonError, UsageError
from .common import context_option, profile_option

if TYPE_CHECKING:
    from ..aws.environment import AwsEnvironment

#: Environment for the CDK CLI: quiet, no telemetry, no Node version nag.
CDK_ENV = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "CDK_DISABLE_VERSION_CHECK": "1",
}


def cdk_command(project: Path) -> list[str]:
    """The pinned CDK CLI: ``node_modules/.bin/cdk`` of the project, else ``npx cdk``."""
    local = project / "node_modules" / ".bin" / "cdk"
    if local.is_file():
        return [str(local)]
    npx = shutil.which("npx")
    if npx is None:
        raise StsmonError("the CDK CLI is not installed: run `./run.sh setup` (needs Node.js 20+)")
    return [npx, "--no-install", "cdk"]


def synth_argv(project: Path, context: tuple[str, ...], output: Path | None, stacks: tuple[str, ...],
               environment: AwsEnvironment | None = None) -> list[str]:
    """The ``cdk synth`` command line. With ``environment``, ``--region`` (and an
    explicit ``--profile``): the CDK CLI then hands the app the very region the
    stsmon commands look in, whatever its own resolution would have found."""
    argv = [*cdk_command(project), "synth", "--quiet", "--no-notices", "--no-version-reporting"]
    if environment is not None:
        argv += environment.cdk_args()
    for pair in context:
        if "=" not in pair:
            raise UsageError(f"-c expects KEY=VALUE, got {pair!r}")
        argv += ["-c", pair]
    if output is not None:
        argv += ["--output", str(output)]
    return argv + list(stacks)


def run_synth(project: Path, context: tuple[str, ...] = (), output: Path | None = None, stacks: tuple[str, ...] = (),
              *, environment: AwsEnvironment | None = None) -> Path:
    """Run ``cdk synth`` in ``project`` (the folder with cdk.json); returns the assembly folder."""
    if not (project / "cdk.json").is_file():
        raise UsageError(f"no cdk.json in {project}: run stsmon synth from the project folder")
    env = {**os.environ, **CDK_ENV}
    result = subprocess.run(synth_argv(project, context, output, stacks, environment), cwd=project, env=env)
    if result.returncode != 0:
        raise StsmonError(f"cdk synth failed (exit code {result.returncode}); its messages are above")
    return output or project / "cdk.out"


@click.command(name="synth")
@context_option
@profile_option
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Assembly folder (default: cdk.out).")
@click.argument("stacks", nargs=-1)
def command(context: tuple[str, ...], output: Path | None, stacks: tuple[str, ...]) -> None:
    """Synthesize the CDK app into a cloud assembly (npx cdk synth, quiet,
    telemetry and notices off). -c KEY=VALUE is passed through to cdk.

    The stacks are synthesized for the AWS region the other commands use
    (--region is passed to cdk: $AWS_REGION, $AWS_DEFAULT_REGION, the
    profile's region, else us-east-1) and, when AWS credentials are found,
    for their account (the CDK CLI looks it up); without credentials, for
    account 000000000000 (fine locally; synthesize again before deploying)."""
    from .common import aws_environment

    if (Path.cwd() / "cdk.json").is_file():
        from .common import load_cli_config

        load_cli_config(context)  # a bad value fails here, in one message, before the CDK CLI starts
    environment = aws_environment()
    out = run_synth(Path.cwd(), context, output, stacks, environment=environment)
    click.echo(f"Synthesized to {out} for region {environment.describe()}")
