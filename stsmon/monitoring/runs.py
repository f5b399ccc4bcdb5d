"""Run the deployed monitoring pipeline locally and take in its result.

One path for ``stsmon monitor run`` and the scheduler process:
:func:`run_monitoring` starts the monitoring pipeline through the local
executor (recorded like any execution, ``executions/{pipeline}/{id}/``),
then :func:`collect` reads the ``monitoring`` output of its
``MonitorModelQuality`` step, evaluates the deployed alarms on the metric
data points the execution published, and writes a run record
``runs/monitor-{execution id}.json``.

The monitor publishes its metrics itself, as on AWS: its ``PutMetricData``
calls reach the executor's job endpoint, which stores them in the local
CloudWatch (:mod:`stsmon.monitoring.metrics`) tagged with the execution id.
A Failed window fails the step (monitor.py exits 3 after writing its
outputs and publishing ``monitoring_failed`` = 1): the execution is Failed,
its outputs are not uploaded (EndOfJob outputs of a failed job), the reason
is the job's ExitMessage, and SageMaker's ``ExecutionFailed`` is recorded too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from stscontracts import names

from ..clock import Clock
from ..fileio import write_json_atomic
from ..errors import NotDeployedError, UsageError
from ..state import StateDir
from . import metrics

#: Stack outputs (docs/CONTRACTS.md §3) the local monitor needs.
OUTPUT_KEYS = {
    "pipeline": "MonitoringPipelineName",
    "schedule": "MonitoringScheduleName",
    "endpoint": "EndpointName",
    "capture_uri": "DataCaptureUri",
    "ground_truth_uri": "GroundTruthUri",
    "output_uri": "MonitoringOutputUri",
}


@dataclass(frozen=True)
class MonitoringTarget:
    pipeline: str
    schedule: str
    endpoint: str
    capture_uri: str
    ground_truth_uri: str


def deployed_outputs(state: StateDir) -> dict[str, Any]:
    """Every locally deployed stack's outputs, merged (later stacks win on a clash)."""
    from ..localcloud.deployer import stack_outputs

    merged: dict[str, Any] = {}
    for outputs in stack_outputs(state).values():
        merged.update(outputs)
    return merged


def monitoring_target(state: StateDir) -> MonitoringTarget:
    """The deployed monitoring pipeline and what it watches; NotDeployedError naming what is missing."""
    outputs = deployed_outputs(state)
    keys = ("pipeline", "schedule", "endpoint", "capture_uri", "ground_truth_uri")
    missing = [OUTPUT_KEYS[k] for k in keys if not outputs.get(OUTPUT_KEYS[k])]
    if missing:
        raise NotDeployedError(
            f"the monitoring stack is not deployed locally in {state.root} (missing stack outputs: "
            f"{', '.join(missing)}): run `stsmon deploy` first")
    return MonitoringTarget(*(str(outputs[OUTPUT_KEYS[k]]) for k in keys))


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _parse(text: str, what: str) -> datetime:
    try:
        return metrics.parse_time(text)
    except ValueError:
        raise UsageError(f"--window: {what} {text!r} is not an ISO-8601 time (e.g. 2026-11-27T13:00:00Z)") from None


def window_parameters(window: str, now: datetime) -> dict[str, str]:
    """Pipeline parameters for ``--window``.

    ``previous`` (default): the pipeline's own default (the previous full hour
    minus the deployed label delay). ``current``: the hour in progress.
    ``END``: the hour before END. ``START/END``: whole hours from START to
    END (WindowHours set too). Times are ISO-8601, floored to the hour, UTC if
    no offset is given.
    """
    text = (window or "previous").strip()
    if text == "previous":
        return {}
    if text == "current":
        return {"WindowEnd": metrics.iso(_hour(now) + timedelta(hours=1)), "WindowHours": "1", "LabelDelayHours": "0"}
    if "/" in text:
        start_text, end_text = text.split("/", 1)
        start, end = _hour(_parse(start_text, "start")), _hour(_parse(end_text, "end"))
        hours = int((end - start).total_seconds() // 3600)
        if hours < 1:
            raise UsageError(f"--window {text!r}: the end must be at least one whole hour after the start")
        return {"WindowEnd": metrics.iso(end), "WindowHours": str(hours), "LabelDelayHours": "0"}
    end = _hour(_parse(text, "end"))
    return {"WindowEnd": metrics.iso(end), "LabelDelayHours": "0"}


@dataclass
class MonitorRun:
    """One monitoring execution and what came of it."""

    execution: dict[str, Any]
    result: dict[str, Any] | None = None
    output_uri: str | None = None
    output_dir: Path | None = None
    ingested: int = 0
    alarms: list[dict[str, Any]] = field(default_factory=list)
    record_path: Path | None = None

    @property
    def status(self) -> str:
        """The monitor's status, or the execution's failure when there is no result."""
        if self.result is not None:
            return self.result["status"]
        return "Failed"

    @property
    def failure_reason(self) -> str:
        """The result's reason; for a failed execution the monitor step's ExitMessage (the reason
        monitor.py gave), else the execution's FailureReason."""
        if self.result is not None:
            return self.result.get("failure_reason", "")
        step = _monitor_step(self.execution) or {}
        message = step.get("ExitMessage") or ""
        if message:
            return message.removeprefix(names.MONITOR_FAILED_PREFIX)
        return self.execution.get("FailureReason") or f"execution {self.execution.get('PipelineExecutionStatus')}"


def _monitor_step(execution: dict[str, Any]) -> dict[str, Any] | None:
    for step in execution.get("Steps", []):
        if step.get("StepName") == names.STEP_MONITOR:
            return step
    return None


def output_uri_of(execution: dict[str, Any]) -> str | None:
    """The S3 URI of the monitor step's ``monitoring`` output, if the step ran."""
    step = _monitor_step(execution) or {}
    outputs = ((step.get("Properties") or {}).get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for out in outputs:
        if out.get("OutputName") == names.OUTPUT_MONITORING:
            return (out.get("S3Output") or {}).get("S3Uri")
    return None


def _pipeline_metrics(state: StateDir, execution: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Record ExecutionStarted/Succeeded/Failed for the execution, as SageMaker does; evaluate their alarms."""
    status = execution.get("PipelineExecutionStatus")
    if status not in ("Succeeded", "Failed", "Stopped"):
        return []
    stamp = execution.get("EndTime") or execution.get("LastModifiedTime") or metrics.iso(now)
    dims = [{"Name": names.DIMENSION_PIPELINE, "Value": execution.get("PipelineName", "")}]
    data = [{"MetricName": name, "Timestamp": stamp, "Dimensions": dims, "Value": value, "Unit": "Count"}
            for name, value in (("ExecutionStarted", 1.0), ("ExecutionSucceeded", float(status == "Succeeded")),
                                (names.METRIC_EXECUTION_FAILED, float(status == "Failed")), ("ExecutionStopped", float(status == "Stopped")))]
    metrics.MetricStore(state).put(names.PIPELINE_METRICS_NAMESPACE, data, source=f"{execution['PipelineExecutionId']}:pipeline")
    return metrics.evaluate_alarms(state, metrics.parse_time(stamp), now=now, namespace=names.PIPELINE_METRICS_NAMESPACE)


def collect(state: StateDir, execution: dict[str, Any], *, clock: Clock, trigger: str = "manual") -> MonitorRun:
    """Read a finished monitoring execution's result; ingest its metrics; evaluate alarms
    (state changes stamped by ``clock``); record it."""
    run = MonitorRun(execution=execution)
    now = clock.now()
    uri = output_uri_of(execution)
    if uri and execution.get("PipelineExecutionStatus") == "Succeeded":
        run.output_uri = uri
        run.output_dir = state.s3_path(uri)
        result_path = run.output_dir / names.RESULT_FILE
        if result_path.is_file():
            run.result = json.loads(result_path.read_text(encoding="utf-8"))
    # What the execution published (also when it failed: monitor.py publishes before it exits 3).
    published = metrics.MetricStore(state).published_by(f"{execution['PipelineExecutionId']}#")
    for namespace, points in sorted(published.items()):
        run.ingested += len(points)
        run.alarms += metrics.evaluate_alarms(state, max(p.timestamp for p in points), now=now, namespace=namespace)
    run.alarms += _pipeline_metrics(state, execution, now)
    run.record_path = state.runs / f"monitor-{execution['PipelineExecutionId']}.json"
    write_json_atomic(run.record_path, {
        "kind": "monitor",
        "trigger": trigger,
        "pipeline": execution.get("PipelineName"),
        "execution_id": execution.get("PipelineExecutionId"),
        "execution_status": execution.get("PipelineExecutionStatus"),
        "parameters": execution.get("Parameters", []),
        "created": execution.get("CreationTime"),
        "ended": execution.get("EndTime"),
        "output_uri": run.output_uri,
        "status": run.status,
        "failure_reason": run.failure_reason,
        "window": (run.result or {}).get("window"),
        "counts": (run.result or {}).get("counts"),
        "metrics": (run.result or {}).get("metrics"),
        "violations": (run.result or {}).get("violations", []),
        "ingested_data_points": run.ingested,
        "alarms": run.alarms,
    })
    return run


def run_monitoring(
    state: StateDir,
    parameters: dict[str, str] | None = None,
    *,
    pipeline: str | None = None,
    trigger: str = "manual",
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    clock: Clock,
) -> MonitorRun:
    """Start the monitoring pipeline now (by ``clock``: its window, its times) and collect its result."""
    from ..localcloud.executor import start_execution

    name = pipeline or monitoring_target(state).pipeline
    params = dict(parameters or {})
    display = f"monitor-{trigger}-{clock.now():%Y%m%dT%H%M%S}"
    execution = start_execution(state, name, params, display_name=display, on_event=on_event, clock=clock)
    return collect(state, execution, trigger=trigger, clock=clock)


def list_results(state: StateDir, pipeline: str) -> list[MonitorRun]:
    """Every recorded execution of the monitoring pipeline with its result, oldest first."""
    from ..localcloud.executions import list_executions

    runs = []
    for execution in reversed(list_executions(state, pipeline)):
        if execution.get("PipelineExecutionStatus") == "Executing":
            continue
        run = MonitorRun(execution=execution)
        uri = output_uri_of(execution)
        if uri:
            run.output_uri = uri
            run.output_dir = state.s3_path(uri)
            path = run.output_dir / names.RESULT_FILE
            if path.is_file():
                try:
                    run.result = json.loads(path.read_text(encoding="utf-8"))
                except ValueError:
                    run.result = None
        runs.append(run)
    return runs
