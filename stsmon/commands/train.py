"""``stsmon train``: run the training pipeline (locally or on AWS), wait, report, record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import cli_clock, cli_sleep, command_clients, context_option, state_dir_option, target_option


_SHOWN: dict[str, str] = {}


def _progress(kind: str, data: dict[str, Any]) -> None:
    """One line per step status change (and when the execution starts)."""
    now = cli_clock().now().astimezone().strftime("%H:%M:%S")  # local time of day, for people
    if kind == "execution":
        status = data.get("PipelineExecutionStatus")
        if status == "Executing":
            click.echo(f"{now}  execution {data.get('PipelineExecutionArn', '').rsplit('/', 1)[-1]} started")
        return
    status = data.get("StepStatus")
    if status in ("Starting",) or _SHOWN.get(data.get("StepName", "")) == status:
        return
    _SHOWN[data.get("StepName", "")] = status
    line = f"{now}  {data.get('StepName', ''):<22} {status}"
    if status == "Failed" and data.get("FailureReason"):
        line += f": {data['FailureReason'].splitlines()[-1] if data['StepType'] != 'Fail' else data['FailureReason']}"
    click.echo(line)


def _summary(record: dict[str, Any]) -> None:
    click.echo("")
    click.echo(f"Pipeline {record['pipeline_name']} execution {record['execution_id']}: {record['status']}"
               + (f" in {record['duration_seconds']:.0f} s" if record.get("duration_seconds") is not None else ""))
    for step in record["steps"]:
        took = f"{step['duration_seconds']:7.1f} s" if step.get("duration_seconds") is not None else " " * 9
        click.echo(f"  {step['name']:<22} {step['type'] or '':<14} {step['status']:<10} {took}")
    if record["metrics"]:
        click.echo("Evaluation metrics (test split):")
        width = max(len(name) for name in record["metrics"])
        for name, value in record["metrics"].items():
            click.echo(f"  {name:<{width}}  {value:.4f}")
    if record.get("model_package_arn"):
        click.echo(
            f"Registered {record['model_package_arn']} (version {record['model_package_version']}, "
            f"{record['model_approval_status']})"
        )
        if record.get("baseline"):
            click.echo(f"  baseline constraints: {record['baseline']['constraints']}")
    else:
        click.echo("No model package registered.")


@click.command(name="train")
@target_option
@state_dir_option
@context_option
@click.option(
    "--input-data",
    default=None,
    metavar="PATH|URI",
    help="Training data: a local file or folder, file://, or s3:// URI. A local one is copied to "
    "s3://{bucket}/{prefix}/input/ first. Default: what is already there.",
)
@click.option("-p", "--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="Pipeline parameter override (repeatable), e.g. QualityThreshold=0.8.")
@click.option("--pipeline", "pipeline_name", default=None, help="Pipeline name (default: the training stack's TrainingPipelineName output).")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("trainmodel_out.json"),
    show_default=True,
    help="Where to write the run record (also kept in the state folder's runs/).",
)
def command(
    target: str,
    state_dir: Path | None,
    context: tuple[str, ...],
    input_data: str | None,
    parameters: tuple[str, ...],
    pipeline_name: str | None,
    out_file: Path,
) -> None:
    """Start the training pipeline, show progress per step, wait, print step
    statuses and evaluation metrics, and write a run record.

    Exits non-zero when the execution fails (the quality gate's Fail step
    included), with the failing step's reason.
    """
    from ..clients.stacks import deployed_outputs
    from ..training import TrainingFailed, parse_parameters, run_training, write_record

    overrides = parse_parameters(parameters)
    with command_clients(target, state_dir, context) as clients:
        outputs = deployed_outputs(clients, ("foundation", "training"))
        marker = clients.runtime.event_marker()
        record = run_training(
            clients,
            pipeline_name=pipeline_name or outputs.get("TrainingPipelineName") or clients.config.pipeline_name,
            parameters=overrides,
            input_data=input_data,
            bucket=outputs.get("ArtifactBucketName"),
            prefix=clients.config.prefix,
            on_event=_progress,
            sleep=cli_sleep,
        )
        state = clients.state
        events = clients.runtime.events_since(marker)
    paths = write_record(record, state, out_file)
    _summary(record)
    for line in events:  # the registration's event on the local bus (on AWS: EventBridge -> the alarm topic)
        click.echo(f"event: {line}")
    click.echo(f"Run record: {paths[-1]}")
    if record["status"] != "Succeeded":
        step = next((s for s in record["steps"] if s["name"] == record.get("failed_step")), None)
        if step is not None and step["type"] == "Fail":
            message = f"the quality gate stopped the pipeline: {record['failure_reason']}"
        elif step is not None:
            message = f"training pipeline {record['status'].lower()} at step {step['name']}: {step['failure_reason']}"
        else:
            message = f"training pipeline {record['status'].lower()}: {record.get('failure_reason') or 'no reason given'}"
        raise TrainingFailed(message)
