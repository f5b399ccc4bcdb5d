"""``stsmon cleanup``: stop local processes and remove the local state, or clean up AWS leftovers."""

from __future__ import annotations

from pathlib import Path

import click

from .common import aws_session, context_option, resolve_state_dir, state_dir_option, target_option


@click.command(name="cleanup")
@target_option
@state_dir_option
@context_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-state", is_flag=True, help="Local: only stop the endpoint, scheduler and executions; keep the state folder.")
@click.option("--delete-packages", is_flag=True,
              help="AWS: also delete every model package in the group (a prod `cdk destroy` retains them).")
def command(target: str, state_dir: Path | None, context: tuple[str, ...], yes: bool, keep_state: bool,
            delete_packages: bool) -> None:
    """Clean up after the flow (the original cleanup.py).

    Locally: stop the endpoint servers, the scheduler and running pipeline
    executions, then remove the state folder (buckets, registry, records).
    Files written to the current folder (trainmodel_out.json,
    testendpoint_out.json) are left alone.

    On AWS: stop running executions of the training and monitoring pipelines
    and, with --delete-packages, delete the registered model packages; then
    remove the stacks with `npx cdk destroy --all`, which in the dev profile
    also empties the bucket and removes packages and executions itself.
    """
    from ..cleanup import aws_cleanup, remove_local_state, stop_local

    if target == "local":
        state = resolve_state_dir(state_dir)
        if not state.root.exists():
            click.echo(f"Nothing to clean up: {state.root} does not exist.")
            return
        if not keep_state and not yes:
            click.confirm(f"Stop local processes and delete {state.root}?", abort=True)
        stop_local(state, click.echo)
        if keep_state:
            click.echo(f"Kept {state.root}.")
        else:
            remove_local_state(state, click.echo)
        return

    aws = aws_session(context)
    cfg = aws.config
    if delete_packages and not yes:
        click.confirm(f"Delete every model package in {cfg.model_package_group_name} ({cfg.region})?", abort=True)
    done = aws_cleanup(cfg, cfn=aws.client("cloudformation"), sagemaker=aws.client("sagemaker"),
                       echo=click.echo, delete_packages=delete_packages)
    click.echo(f"Stopped {len(done['executions'])} execution(s), deleted {len(done['packages'])} package(s).")
    click.echo("Now remove the stacks: npx cdk destroy --all"
               + ("" if cfg.is_prod else " (dev profile: also empties the bucket and removes the packages)"))
