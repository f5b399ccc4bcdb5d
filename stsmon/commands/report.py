"""``stsmon report``: model quality over time — HTML page with PNG charts, and a terminal summary."""

from __future__ import annotations

from pathlib import Path

import click

from stscontracts import names

from .common import command_clients, context_option, state_dir_option, target_option


@click.command(name="report")
@target_option
@state_dir_option
@context_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the report (replaced). Default: {state}/reports/monitoring/.")
@click.option("--last", type=click.IntRange(min=1), default=12, show_default=True, help="Windows shown in the terminal.")
@click.option("--limit", type=click.IntRange(min=1), default=500, show_default=True,
              help="Newest monitoring runs read.")
def command(target: str, state_dir: Path | None, context: tuple[str, ...], out_dir: Path | None, last: int, limit: int) -> None:
    """Metrics over time against their thresholds, violations, confusion matrix and record counts.

    Writes index.html with PNG charts (open it in a browser) and prints a
    summary of the recent windows and the alarm states.
    """
    from ..clients.stacks import deployed_outputs
    from ..monitoring import report as rep
    from ..monitoring import runs
    from ..monitoring.data_quality_report import judged

    with command_clients(target, state_dir, context) as clients:
        state = clients.state
        outputs = deployed_outputs(clients)
        pipeline = outputs.get("MonitoringPipelineName")
        if not pipeline:
            from ..errors import NotDeployedError

            raise NotDeployedError(f"the monitoring stack is not deployed {clients.runtime.where()} (no "
                                   f"MonitoringPipelineName output): {clients.deploy_hint()}")
        results, output_uris = [], {}
        for run in runs.list_runs(clients, pipeline, output_uri=outputs.get("MonitoringOutputUri"), limit=limit):
            report_uri = f"{run.output_uri}/{names.REPORT_FILE}" if run.output_uri and run.result else None
            results.append(rep.RunResult.from_result(
                run.execution_id, run.result, failure=run.failure_reason,
                report_path=clients.runtime.show_uri(report_uri) if report_uri else None))
            output_uris[run.execution_id] = run.output_uri
        window_stats = baseline_stats = None
        latest = (judged(results) or [None])[-1]
        if latest is not None and output_uris.get(latest.execution_id):
            from ..models.versions import served_arn

            window_stats, why = runs.data_quality_statistics(clients, output_uris[latest.execution_id])
            baseline_stats, why_base = runs.baseline_data_quality_statistics(clients, served_arn(clients))
            for reason in (why, why_base):
                if reason:
                    click.echo(f"no data-quality histograms: {reason}", err=True)
        alarms = runs.alarm_states(clients, runs.monitoring_alarm_prefixes(clients.config.prefix))
        title = f"Model quality of {outputs.get('EndpointName', clients.config.endpoint_name)}"
    target_dir = out_dir or state.root / "reports" / "monitoring"
    index = rep.build_report(results, alarms, target_dir, title=title, window_statistics=window_stats,
                             baseline_statistics=baseline_stats)
    for line in rep.summary_lines(results, alarms, last=last):
        click.echo(line)
    click.echo(f"Report: {index}")
