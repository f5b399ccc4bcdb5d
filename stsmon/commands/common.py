"""Options shared by the commands, so every command spells them the same way;
and the one place the CLI resolves its configuration and AWS environment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..clock import Clock, SystemClock
from ..state import STATE_DIR_ENV, StateDir, default_state_dir

if TYPE_CHECKING:
    from ..aws.environment import AwsEnvironment
    from stscontracts.config import Config

TARGETS = ("local", "aws")

#: click ``ctx.meta`` keys (meta is shared by a command and the commands it invokes, e.g. the demo's steps).
_PROFILE_META = "stsmon.aws_profile"
_ENVIRONMENT_META = "stsmon.aws_environment"


def _remember_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta[_PROFILE_META] = value
        ctx.meta.pop(_ENVIRONMENT_META, None)
    return value


profile_option = click.option(
    "--profile",
    default=None,
    metavar="NAME",
    expose_value=False,
    callback=_remember_profile,
    help="AWS profile (as `cdk --profile`). Default: $AWS_PROFILE, else your default credentials; "
    "the region is the CDK CLI's: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region, us-east-1.",
)

_target = click.option(
    "--target",
    type=click.Choice(TARGETS),
    default="local",
    show_default=True,
    help="Where to act: the local runtime, or the deployed AWS resources (uses your AWS credentials).",
)


def target_option(func: Any) -> Any:
    """``--target local|aws`` and, for aws, ``--profile NAME``."""
    return _target(profile_option(func))

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


def cli_clock() -> Clock:
    """The wall clock. The CLI is where "now" enters the program: everything below takes this clock."""
    return SystemClock()


def resolve_state_dir(state_dir: Path | None) -> StateDir:
    """The StateDir for a ``--state-dir`` value (None = the default)."""
    return StateDir((state_dir or default_state_dir()).resolve())


def aws_environment() -> AwsEnvironment:
    """The AWS region and profile, resolved once per command line with the CDK
    CLI's rules (``stsmon/aws/environment.py``): ``--profile``, the environment,
    the AWS config files. Reads only local files, never the network."""
    from ..aws.environment import aws_environment_from_process

    ctx = click.get_current_context(silent=True)
    meta: dict[str, Any] = ctx.meta if ctx is not None else {}
    if _ENVIRONMENT_META not in meta:
        meta[_ENVIRONMENT_META] = aws_environment_from_process(profile=meta.get(_PROFILE_META), project=Path.cwd())
    return meta[_ENVIRONMENT_META]


def load_cli_config(context: tuple[str, ...] | list[str] = ()) -> Config:
    """The configuration as the CLI sees it: defaults < ./cdk.json context <
    ./.env < environment < ``-c KEY=VALUE`` (the same layers as ``app.py``).

    The environment layer gets ``CDK_DEFAULT_REGION`` = the resolved AWS
    region, exactly as the CDK CLI sets it for ``app.py``: so the region the
    commands look in is the region ``cdk deploy`` put the stacks in (``-c
    CDK_DEFAULT_REGION=...`` still pins another one, for both).
    """
    import os

    from stscontracts.config import load_config, parse_context_pairs, read_cdk_json_context

    env = {**os.environ, "CDK_DEFAULT_REGION": aws_environment().region}
    return load_config(
        context=parse_context_pairs(list(context)),
        env=env,
        dotenv_path=Path(".env"),
        cdk_json_context=read_cdk_json_context(Path("cdk.json")),
    )


#: A JSON-lines file that gets one line per call a local client makes (service, method, parameter
#: names, outcome): what the local run exercised of the AWS API, each call checked against botocore.
CLIENT_LOG_ENV = "STSMON_CLIENT_LOG"


def _call_log() -> Any:
    import json
    import os

    from ..clients.validation import CallLog

    path = os.environ.get(CLIENT_LOG_ENV)
    if not path:
        return None

    def sink(entry: dict[str, Any]) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    return CallLog(sink)


def command_clients(target: str, state_dir: Path | None, context: tuple[str, ...] | list[str] = ()) -> Any:
    """The boto3-shaped clients of ``target`` for a command (:mod:`stsmon.clients`); use as a context manager."""
    from ..clients import make_clients

    config = load_cli_config(context)
    return make_clients(target, config=config, state=resolve_state_dir(state_dir), clock=cli_clock(),
                        environment=aws_environment(), call_log=_call_log())


def cli_sleep(seconds: float) -> None:
    """The CLI's way to wait: wait loops below take a ``sleep`` (tests pass their own)."""
    import time

    time.sleep(seconds)
