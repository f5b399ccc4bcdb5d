"""``stsmon deploy``: deploy the cloud assembly locally (or, with --target aws, with the CDK CLI)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click

from ..errors import NotDeployedError, StsmonError
from .common import assembly_option, cli_clock, context_option, resolve_state_dir, state_dir_option, target_option


def aws_deploy_argv(project: Path, assembly: Path, stacks: tuple[str, ...], exclusively: bool,
                    cdk_args: list[str] | tuple[str, ...] = ()) -> list[str]:
    from .synth import cdk_command

    argv = [*cdk_command(project), "deploy", *cdk_args, "--app", str(assembly), "--no-notices",
            "--require-approval", "broadening"]
    if exclusively:
        argv.append("--exclusively")
    return argv + (list(stacks) if stacks else ["--all"])


def caller_account(aws) -> str:
    """The account of the AWS credentials (STS GetCallerIdentity); no credentials is a clear error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return aws.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise StsmonError(f"no usable AWS credentials ({exc}): configure them (aws configure / aws sso login), "
                          "or run `stsmon doctor --target aws`") from None


@click.command(name="deploy")
@target_option
@state_dir_option
@assembly_option
@context_option
@click.option("--exclusively", is_flag=True, help="Only the named stacks, not the stacks they depend on.")
@click.option("--dry-run", is_flag=True, help="Check and show the differences; change nothing.")
@click.option("--no-capture", is_flag=True, help="Serve without data capture (local endpoint).")
@click.option("--package-arn", default=None, help="Serve this model package instead of the latest approved one.")
@click.option("--foreground", is_flag=True, help="Run the local endpoint in this process until Ctrl-C.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Local endpoint address (loopback unless told otherwise).")
@click.option("--port", type=int, default=None, help="Local endpoint port (default: the endpoint's own).")
@click.option("--stop", is_flag=True, help="Stop the local endpoint server (it stays deployed).")
@click.argument("stacks", nargs=-1)
def command(
    target: str,
    state_dir: Path | None,
    assembly: Path,
    context: tuple[str, ...],
    exclusively: bool,
    dry_run: bool,
    no_capture: bool,
    package_arn: str | None,
    foreground: bool,
    host: str,
    port: int | None,
    stop: bool,
    stacks: tuple[str, ...],
) -> None:
    """Deploy STACKS (default: all) of the synthesized assembly, in dependency order.

    Locally (the default) every stack is checked first — resource types,
    intrinsics, handler checks — with nothing changed if anything is wrong;
    a redeploy prints the differences, then applies only them. The serving
    stack needs an approved model package: run `stsmon train` after deploying
    the foundation and training stacks, then deploy again.
    With --target aws this runs `cdk deploy` on the same assembly.
    """
    if target == "aws":
        from ..aws.environment import assembly_mismatch
        from .common import aws_session

        aws = aws_session(context)
        problem = assembly_mismatch(assembly, region=aws.region, account=caller_account(aws))
        if problem:
            raise StsmonError(f"not deploying: {problem}")
        argv = aws_deploy_argv(Path.cwd(), assembly, stacks, exclusively, aws.environment.cdk_args())
        result = subprocess.run(argv, env={**os.environ})
        if result.returncode:
            raise StsmonError(f"cdk deploy failed (exit code {result.returncode})")
        return

    if stop and not stacks:
        # Stopping needs no assembly: stop every local endpoint server of this state folder.
        from ..endpoint.process import list_records, stop_endpoint

        state = resolve_state_dir(state_dir)
        records = list_records(state)
        if not records:
            raise NotDeployedError(f"no local endpoint in {state.root}: nothing to stop")
        for record in records:
            name = str(record["endpoint_name"])
            click.echo(f"endpoint {name}: " + ("stopped" if stop_endpoint(state, name) else "was not running"))
        return

    from ..localcloud.assembly import Assembly
    from ..localcloud.deployer import LocalDeployer
    from ..localcloud.handlers import ServingOptions

    from .common import load_cli_config

    region = load_cli_config(context).region  # for stacks synthesized without a region
    serving = ServingOptions(
        capture=not no_capture, package_arn=package_arn, foreground=foreground, host=host, port=port, stop=stop
    )
    state = resolve_state_dir(state_dir)
    deployer = LocalDeployer(state, clock=cli_clock(), serving=serving, echo=click.echo, region=region)
    report = deployer.deploy(Assembly.load(assembly), list(stacks) or None, exclusively=exclusively, dry_run=dry_run)
    click.echo("")
    for result in report.results:
        line = f"  {result.stack_name:<24} {result.status}"
        if result.message:
            line += f": {result.message}"
        click.echo(line)
    if not report.ok:
        failed = [r for r in report.results if r.status == "failed"]
        others = "checked" if dry_run else "deployed"
        raise StsmonError(
            f"{len(failed)} stack(s) failed to {'check' if dry_run else 'deploy'} "
            f"({', '.join(r.stack_name for r in failed)}); the other stacks are {others}"
        )
    for result in report.results:
        for key, value in result.outputs.items():
            if not key.startswith("ExportsOutput"):
                click.echo(f"  {result.stack_name}.{key} = {value}")
