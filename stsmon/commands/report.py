"""``stsmon report``: model quality over time — HTML page with PNG charts, and a terminal summary."""

from __future__ import annotations

from pathlib import Path

import click

from stscontracts import names

from .common import context_option, resolve_state_dir, state_dir_option, target_option


@click.command(name="report")
@target_option
@state_dir_option
@context_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the report (replaced). Default: {state}/reports/monitoring/.")
@click.option("--last", type=click.IntRange(min=1), default=12, show_default=True, help="Windows shown in the terminal.")
@click.option("--limit", type=click.IntRange(min=1), default=500, show_default=True,
              help="Newest monitoring runs read (--target aws reads them from S3).")
def command(target: str, state_dir: Path | None, context: tuple[str, ...], out_dir: Path | None, last: int, limit: int) -> None:
    """Metrics over time against their thresholds, violations, confusion matrix and record counts.

    Writes index.html with PNG charts (open it in a browser) and prints a
    summary of the recent windows and the alarm states.
    """
    from ..monitoring import report as rep

    state = resolve_state_dir(state_dir)
    if target == "local":
        from ..monitoring import metrics, runs

        where = runs.monitoring_target(state)
        results = []
        for run in runs.list_results(state, where.pipeline)[-limit:]:
            results.append(rep.RunResult.from_result(
                run.execution["PipelineExecutionId"], run.result, failure=run.failure_reason,
                report_path=str(run.output_dir / names.REPORT_FILE) if run.output_dir and run.result else None))
        alarms = metrics.list_alarms(state)
        title = f"Model quality of {where.endpoint}"
    else:
        from ..aws import stack_outputs
        from ..monitoring.aws import monitoring_alarm_prefixes
        from ..monitoring.aws_report import aws_results
        from .common import aws_session

        aws = aws_session(context)
        cfg = aws.config
        outputs = stack_outputs(aws.client("cloudformation"), cfg.stack_name("monitoring"))
        results, alarms = aws_results(aws.client("s3"), aws.client("cloudwatch"),
                                      outputs["MonitoringOutputUri"], monitoring_alarm_prefixes(cfg.prefix), limit=limit)
        title = f"Model quality of {outputs.get('EndpointName', cfg.endpoint_name)} (AWS)"
    target_dir = out_dir or state.root / "reports" / "monitoring"
    index = rep.build_report(results, alarms, target_dir, title=title)
    for line in rep.summary_lines(results, alarms, last=last):
        click.echo(line)
    click.echo(f"Report: {index}")
