"""``stsmon monitor``: run the model-quality monitor now; show or control its schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stscontracts import names

from ..errors import StsmonError
from .common import cli_clock, cli_sleep, command_clients, context_option, resolve_state_dir, state_dir_option, target_option

WINDOW_HELP = ("Window to monitor: previous (default: the previous full hour, minus the deployed label delay), "
               "current (the hour in progress), END (the hour before END) or START/END (whole hours), ISO-8601.")


class MonitoringFailed(StsmonError):
    exit_code = 1


def _progress(kind: str, data: dict[str, Any]) -> None:
    now = cli_clock().now().astimezone().strftime("%H:%M:%S")  # local time of day, for people
    if kind == "step" and data.get("StepStatus") in ("Executing", "Succeeded", "Failed", "Stopped"):
        line = f"{now}  {data.get('StepName', '')} {data['StepStatus']}"
        if data.get("FailureReason"):
            line += f": {data['FailureReason'].strip().splitlines()[-1]}"
        click.echo(line)


def _alarm_lines(alarms: list[dict[str, Any]]) -> list[str]:
    lines = []
    for a in alarms:
        change = f"{a['previous']} -> {a['state']}" if a.get("changed") else a["state"]
        lines.append(f"  alarm {a['name']}: {change}" + (f" ({a['reason']})" if a["state"] == "ALARM" else ""))
    return lines


@click.group(name="monitor")
def command() -> None:
    """Run the model-quality monitor now, or show and control its hourly schedule."""


@command.command(name="run")
@target_option
@state_dir_option
@context_option
@click.option("--window", default="previous", show_default=True, metavar="WINDOW", help=WINDOW_HELP)
@click.option("--min-label-coverage", type=click.FloatRange(0.0, 1.0), default=None,
              help="Override the deployed MinLabelCoverage (0-1).")
@click.option("-p", "--parameter", "parameters", multiple=True, metavar="KEY=VALUE",
              help="Any other monitoring pipeline parameter (repeatable), e.g. LabelDelayHours=2.")
@click.option("--fail-on-violations", is_flag=True, help="Exit with code 1 when a constraint is violated.")
def run(target: str, state_dir: Path | None, context: tuple[str, ...], window: str, min_label_coverage: float | None,
        parameters: tuple[str, ...], fail_on_violations: bool) -> None:
    """Start the monitoring pipeline now for one window and print its result.

    The execution is recorded like any other; the monitor publishes its
    CloudWatch metrics itself (locally to the local CloudWatch, whose alarms
    are evaluated when the execution ends). The alarm states, and their
    changes during the run, are read back.
    """
    from ..clients.stacks import require_outputs
    from ..monitoring import report, runs

    clock = cli_clock()
    params = runs.window_parameters(window, clock.now())
    for item in parameters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--parameter {item!r} is not KEY=VALUE")
        params[key] = value
    if min_label_coverage is not None:
        params["MinLabelCoverage"] = str(min_label_coverage)
    with command_clients(target, state_dir, context) as clients:
        outputs = require_outputs(clients, "MonitoringPipelineName", "EndpointName")
        pipeline = outputs["MonitoringPipelineName"]
        click.echo(f"Monitoring {outputs['EndpointName']} with pipeline {pipeline} ({window} window, "
                   f"{clients.runtime.where()})")
        run_ = runs.run_now(clients, pipeline, params, alarm_prefixes=runs.monitoring_alarm_prefixes(clients.config.prefix),
                            sleep=cli_sleep, on_step=lambda step: _progress("step", step))
        runs.write_run_record(clients.state, run_, target=clients.target)
        where_out = clients.runtime.show_uri(f"{run_.output_uri}/{names.REPORT_FILE}") if run_.output_uri and run_.result else None
    execution, result, alarms = run_.execution, run_.result, run_.alarms
    reason = run_.failure_reason if result is None else (result.get("failure_reason") or "")
    click.echo(f"Execution {execution.get('PipelineExecutionArn', execution.get('PipelineExecutionId'))}: "
               f"{execution['PipelineExecutionStatus']}")
    failure = reason
    if "no capture records in the window" in failure or "has a ground-truth label" in failure:
        failure += " — nothing captured or labelled in this window? Run `stsmon traffic` and `stsmon ground-truth` first."
    for line in report.result_lines(result, failure=failure):
        click.echo(line)
    for line in _alarm_lines(alarms):
        click.echo(line)
    if where_out:
        click.echo(f"Report: {where_out}")
    status = result["status"] if result else "Failed"
    if status == "Failed":
        raise MonitoringFailed(f"monitoring failed: {(result or {}).get('failure_reason') or failure}")
    if status == "CompletedWithViolations" and fail_on_violations:
        raise MonitoringFailed(f"{len(result['violations'])} constraint violation(s)")


@command.command(name="status")
@state_dir_option
def status(state_dir: Path | None) -> None:
    """Show the local schedule (process, next run), the latest results and the alarm states."""
    from ..monitoring import metrics, scheduler

    state = resolve_state_dir(state_dir)
    info = scheduler.status(state, cli_clock().now())
    proc = info["process"]
    click.echo(f"Scheduler process: {'running, pid ' + str(proc['pid']) if proc else 'not running'} (log {info['log']})")
    if not info["schedules"]:
        click.echo("No schedule deployed locally (stsmon deploy deploys the monitoring stack's schedule).")
    for row in info["schedules"]:
        click.echo(f"  {row['name']}: {row['expression']} {row['state']}, pipeline {row['pipeline']}, next {row['next'] or '-'}, "
                   f"last {row['last'] or '-'} ({row['last_status'] or '-'})")
    for alarm in metrics.list_alarms(state):
        click.echo(f"  alarm {alarm['AlarmName']}: {alarm['StateValue']} — {alarm['StateReason']}")


@command.command(name="start")
@state_dir_option
def start(state_dir: Path | None) -> None:
    """Start the local scheduler process (deploy starts it; use this after `stop`)."""
    from ..monitoring import scheduler

    state = resolve_state_dir(state_dir)
    if not scheduler.list_schedules(state):
        raise StsmonError(f"no schedule deployed in {state.root}: run `stsmon deploy` first", exit_code=3)
    info = scheduler.start(state)
    click.echo(f"Scheduler running: pid {info['pid']}, log {info['log']}")


@command.command(name="stop")
@state_dir_option
def stop(state_dir: Path | None) -> None:
    """Stop the local scheduler process (the schedule stays deployed)."""
    from ..monitoring import scheduler

    state = resolve_state_dir(state_dir)
    click.echo("Scheduler stopped." if scheduler.stop(state) else "Scheduler was not running.")
