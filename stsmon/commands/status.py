"""``stsmon status``: what is deployed (locally or on AWS) and its latest results."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import NotDeployedError

from .common import cli_clock, command_clients, context_option, state_dir_option, target_option


@click.command(name="status")
@target_option
@state_dir_option
@context_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
def command(target: str, state_dir: Path | None, context: tuple[str, ...], as_json: bool) -> None:
    """Show the deployed stacks, the pipelines' latest executions, the model
    packages with their approval and metrics, the endpoint (URL, capture
    counts), the monitoring schedule and the last monitoring result."""
    from ..overview import format_status, status as read_status

    with command_clients(target, state_dir, context) as clients:
        status = read_status(clients, cli_clock().now())
        hint = clients.deploy_hint()
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
    else:
        click.echo("\n".join(format_status(status)))
    if not status["deployed"]:
        # Like `systemctl status` for a unit that is not running: a report, and exit code 3.
        raise NotDeployedError(f"nothing is deployed {status['where']}: {hint}")
