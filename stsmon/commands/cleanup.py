"""``stsmon cleanup``: stop local processes and remove the local state, or clean up AWS leftovers."""

from __future__ import annotations

from pathlib import Path

import click

from .common import command_clients, context_option, state_dir_option, target_option


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

    On either target: stop running executions of the training and monitoring
    pipelines and, with --delete-packages, delete the registered model
    packages. Locally then: stop the endpoint servers and the scheduler and
    remove the state folder (buckets, registry, records; --keep-state keeps
    it). Files written to the current folder (trainmodel_out.json,
    testendpoint_out.json) are left alone. On AWS then: remove the stacks with
    `npx cdk destroy --all`, which in the dev profile also empties the bucket
    and removes packages and executions itself.
    """
    def confirm(question: str) -> None:
        click.confirm(question, abort=True)

    with command_clients(target, state_dir, context) as clients:
        clients.runtime.cleanup(clients, click.echo, confirm, yes=yes, keep_state=keep_state,
                                delete_packages=delete_packages)
