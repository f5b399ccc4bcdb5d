"""``stsmon status``: what is deployed (locally or on AWS) and its latest results."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import NotDeployedError

from .common import aws_session, cli_clock, context_option, resolve_state_dir, state_dir_option, target_option


@click.command(name="status")
@target_option
@state_dir_option
@context_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
def command(target: str, state_dir: Path | None, context: tuple[str, ...], as_json: bool) -> None:
    """Show the deployed stacks, the pipelines' latest executions, the model
    packages with their approval and metrics, the endpoint (URL, capture
    counts), the monitoring schedule and the last monitoring result."""
    from ..overview import aws_status, format_status, local_status

    if target == "local":
        status = local_status(resolve_state_dir(state_dir), cli_clock().now())
    else:
        aws = aws_session(context)
        status = aws_status(
            aws.config,
            cfn=aws.client("cloudformation"),
            sagemaker=aws.client("sagemaker"),
            scheduler=aws.client("scheduler"),
        )
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
    else:
        click.echo("\n".join(format_status(status)))
    if target == "local" and not status["stacks"]:
        # Like `systemctl status` for a unit that is not running: a report, and exit code 3.
        raise NotDeployedError(f"nothing is deployed in {status['state_dir']}: run `stsmon deploy` (or `stsmon demo`)")
