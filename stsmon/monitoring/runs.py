"""Run the deployed monitoring pipeline now and read what came of it — one implementation for both targets.

Through the boto3-shaped clients (:mod:`stsmon.clients`): ``stsmon monitor
run`` starts the monitoring pipeline (:func:`run_now`), follows it, reads the
``monitoring`` output of its ``MonitorModelQuality`` step (the job's
``ProcessingOutputConfig`` and ``ExitMessage`` from ``describe_processing_job``,
``monitoring_result.json`` from S3) and the alarm states and their changes
since the run started (``describe_alarms``, ``describe_alarm_history``);
``stsmon report`` and ``stsmon status`` list the runs (:func:`list_runs`).
The local scheduler starts the pipeline through the same client, as
EventBridge Scheduler does on AWS.

The monitor publishes its metrics itself, as on AWS (locally its
``PutMetricData`` calls reach the executor's job endpoint and the local
CloudWatch). A Failed window fails the step (monitor.py exits 3 after
writing its outputs and publishing ``monitoring_failed`` = 1): the execution
is Failed, its outputs are not relied on (EndOfJob outputs of a failed job),
the reason is the job's ExitMessage.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from stscontracts import documents, names

from ..errors import StsmonError, UsageError
from ..fileio import write_json_atomic
from ..state import StateDir
from . import metrics



def monitoring_alarm_prefixes(prefix: str) -> tuple[str, ...]:
    """Name prefixes of the monitoring stack's alarms: quality ({p}-quality-*), the monitor's own
    ({p}-monitor-failed, {p}-monitor-no-result) and the label-free ones ({p}-data-quality-drift*,
    {p}-estimated-*)."""
    return (f"{prefix}-quality-", f"{prefix}-monitor-", f"{prefix}-data-quality-", f"{prefix}-estimated-")


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
    """One monitoring execution and what came of it.

    ``execution``: ``describe_pipeline_execution`` (plus ``PipelineExecutionId``
    and ``PipelineName``); ``steps``: its steps; ``result``: its
    ``monitoring_result.json`` (None when the execution did not succeed);
    ``alarms``: the monitoring alarms, with ``changed``/``previous`` when their
    state changed since the run started.
    """

    execution: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    output_uri: str | None = None
    exit_message: str = ""
    alarms: list[dict[str, Any]] = field(default_factory=list)
    record_path: Path | None = None

    @property
    def execution_id(self) -> str:
        return self.execution["PipelineExecutionId"]

    @property
    def status(self) -> str:
        """The monitor's status, or Failed when there is no result."""
        return self.result["status"] if self.result is not None else "Failed"

    @property
    def failure_reason(self) -> str:
        """The result's reason; for a failed execution the monitor job's ExitMessage (the reason
        monitor.py gave), else the execution's FailureReason."""
        if self.result is not None:
            return self.result.get("failure_reason", "")
        if self.exit_message:
            return self.exit_message.removeprefix(names.MONITOR_FAILED_PREFIX)
        return self.execution.get("FailureReason") or f"execution {self.execution.get('PipelineExecutionStatus')}"


def _client_error(what: str) -> Callable[[Exception], StsmonError]:
    from ..clients.errors import error_message

    return lambda exc: StsmonError(f"{what} failed: {error_message(exc)}")


def _s3_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key.rstrip("/")


def read_result(clients: Any, output_uri: str) -> dict[str, Any] | None:
    """``{output}/monitoring_result.json``, or None when there is none (or it is not JSON).

    Raises :class:`stscontracts.documents.DocumentError` naming the file and every
    problem when it is JSON but not a monitoring result (its schema).
    """
    from botocore.exceptions import ClientError

    from ..clients.errors import is_not_found

    bucket, key = _s3_parts(output_uri)
    try:
        result = json.loads(clients.s3.get_object(Bucket=bucket, Key=f"{key}/{names.RESULT_FILE}")["Body"].read())
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise _client_error(f"reading {output_uri}/{names.RESULT_FILE}")(exc) from None
    except ValueError:
        return None
    return documents.validate(result, documents.MONITORING_RESULT, where=f"{output_uri}/{names.RESULT_FILE}")


def read_json_document(clients: Any, uri: str) -> tuple[dict[str, Any] | None, str]:
    """(a JSON object at an S3 URI, "") or (None, why not): a missing or unreadable document is a
    reason shown in the report, not an error of the report."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..clients.errors import error_message

    bucket, key = _s3_parts(uri)
    try:
        doc = json.loads(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        return None, f"{uri}: {error_message(exc)}"
    except BotoCoreError as exc:
        return None, f"{uri}: {exc}"
    except ValueError as exc:
        return None, f"{uri} is not JSON: {exc}"
    return (doc, "") if isinstance(doc, dict) else (None, f"{uri} is not a JSON object")


def data_quality_statistics(clients: Any, output_uri: str) -> tuple[dict[str, Any] | None, str]:
    """A monitoring run's data-quality statistics.json (``{output}/data-quality/statistics.json``)."""
    return read_json_document(clients, f"{output_uri.rstrip('/')}/{names.DATA_QUALITY_DIR}/{names.STATISTICS_FILE}")


def baseline_data_quality_statistics(clients: Any, package_arn: str) -> tuple[dict[str, Any] | None, str]:
    """The data-quality baseline statistics.json of a model package
    (``DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..clients.errors import error_message

    if not package_arn:
        return None, "the endpoint serves no registered model package"
    try:
        package = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
    except ClientError as exc:
        return None, f"describe_model_package({package_arn}): {error_message(exc)}"
    except BotoCoreError as exc:
        return None, f"describe_model_package({package_arn}): {exc}"
    uri = ((((package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}).get("Statistics") or {})
           .get("S3Uri"))
    if not uri:
        return None, f"{package_arn} has no data-quality baseline (DriftCheckBaselines.ModelDataQuality)"
    return read_json_document(clients, uri)


def read_run(clients: Any, execution: dict[str, Any], steps: list[dict[str, Any]]) -> MonitorRun:
    """The run of a finished execution: the monitor job's output and exit message, the result."""
    from botocore.exceptions import BotoCoreError, ClientError

    arn = execution["PipelineExecutionArn"]
    execution = {**execution, "PipelineExecutionId": arn.rsplit("/", 1)[-1],
                 "PipelineName": execution.get("PipelineName") or arn.split(":pipeline/")[-1].split("/")[0]}
    run = MonitorRun(execution=execution, steps=steps)
    step = next((s for s in steps if s["StepName"] == names.STEP_MONITOR), None)
    job_arn = (((step or {}).get("Metadata") or {}).get("ProcessingJob") or {}).get("Arn")
    if not job_arn:
        return run
    try:
        job = clients.sagemaker.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
    except (ClientError, BotoCoreError) as exc:
        raise _client_error(f"describe_processing_job({job_arn})")(exc) from None
    # monitor.py's reason when it failed the job (a Failed window: exit 3): /opt/ml/output/message
    run.exit_message = job.get("ExitMessage", "")
    uri = next((o["S3Output"]["S3Uri"] for o in (job.get("ProcessingOutputConfig") or {}).get("Outputs", [])
                if o["OutputName"] == names.OUTPUT_MONITORING), None)
    if uri and execution.get("PipelineExecutionStatus") == "Succeeded":
        # A failed job's EndOfJob outputs are not to be relied on: the ExitMessage says why.
        run.output_uri = uri.rstrip("/")
        run.result = read_result(clients, run.output_uri)
    return run


def alarm_states(clients: Any, prefixes: tuple[str, ...], since: datetime | None = None) -> list[dict[str, Any]]:
    """The metric alarms named with one of ``prefixes`` (every page), as
    ``{name, metric, state, reason, threshold, comparison, changed, previous}``; ``changed`` and
    ``previous`` from their state changes since ``since`` (``describe_alarm_history``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    common = os.path.commonprefix(list(prefixes))
    try:
        request: dict[str, Any] = {"AlarmTypes": ["MetricAlarm"]}
        if common:
            request["AlarmNamePrefix"] = common
        alarms = [a for page in clients.cloudwatch.get_paginator("describe_alarms").paginate(**request)
                  for a in page.get("MetricAlarms", []) if a["AlarmName"].startswith(prefixes)]
        out = []
        for alarm in alarms:
            entry = {"name": alarm["AlarmName"], "metric": alarm.get("MetricName"), "state": alarm["StateValue"],
                     "reason": alarm.get("StateReason", ""), "threshold": alarm.get("Threshold"),
                     "comparison": alarm.get("ComparisonOperator"), "changed": False, "previous": None}
            if since is not None:
                items = clients.cloudwatch.describe_alarm_history(
                    AlarmName=alarm["AlarmName"], HistoryItemType="StateUpdate", StartDate=since,
                    ScanBy="TimestampAscending").get("AlarmHistoryItems", [])
                if items:
                    data = json.loads(items[0].get("HistoryData") or "{}")
                    entry["changed"] = True
                    entry["previous"] = (data.get("oldState") or {}).get("stateValue")
            out.append(entry)
    except (ClientError, BotoCoreError) as exc:
        raise _client_error("reading the alarm states")(exc) from None
    return out


def display_name(trigger: str, now: datetime) -> str:
    """``monitor-{trigger}-{time}`` in the form SageMaker takes for a display name (letters, digits, dashes)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", trigger).strip("-")
    return f"monitor-{slug}"[:64] + f"-{now.astimezone(timezone.utc):%Y%m%dT%H%M%S}"


def run_now(
    clients: Any,
    pipeline: str,
    parameters: dict[str, str],
    *,
    trigger: str = "manual",
    alarm_prefixes: tuple[str, ...],
    sleep: Callable[[float], None],
    on_step: Callable[[dict[str, Any]], None] = lambda step: None,
) -> MonitorRun:
    """Start the monitoring pipeline now (its display name from ``clients.clock``), wait, read the result
    and the alarms."""
    from .. import executions

    started = clients.clock.now()
    arn = executions.start(clients.sagemaker, pipeline, parameters,
                           PipelineExecutionDisplayName=display_name(trigger, started))
    execution, steps = executions.wait(clients.sagemaker, arn, poll_seconds=clients.timing.execution_poll, sleep=sleep,
                                       timeout_seconds=clients.timing.execution_timeout, on_step=on_step)
    run = read_run(clients, {**execution, "PipelineName": pipeline}, steps)
    run.alarms = alarm_states(clients, alarm_prefixes, since=execution.get("CreationTime") or started)
    return run


def write_run_record(state: StateDir, run: MonitorRun, *, target: str, trigger: str = "manual") -> Path:
    """``runs/monitor-{execution id}.json``: what the run was and what came of it."""
    def stamp(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    run.record_path = state.runs / f"monitor-{run.execution_id}.json"
    write_json_atomic(run.record_path, {
        "kind": "monitor",
        "target": target,
        "trigger": trigger,
        "pipeline": run.execution.get("PipelineName"),
        "execution_id": run.execution_id,
        "execution_arn": run.execution.get("PipelineExecutionArn"),
        "execution_status": run.execution.get("PipelineExecutionStatus"),
        "created": stamp(run.execution.get("CreationTime")),
        "ended": stamp(run.execution.get("LastModifiedTime")),
        "output_uri": run.output_uri,
        "status": run.status,
        "failure_reason": run.failure_reason,
        "window": (run.result or {}).get("window"),
        "counts": (run.result or {}).get("counts"),
        "metrics": (run.result or {}).get("metrics"),
        "violations": (run.result or {}).get("violations", []),
        "alarms": run.alarms,
    })
    return run.record_path


def list_runs(clients: Any, pipeline: str, *, output_uri: str | None = None, limit: int = 500) -> list[MonitorRun]:
    """The newest ``limit`` finished executions of the monitoring pipeline with their results, oldest first.

    One ``list_pipeline_executions`` page per 100 runs. A succeeded run's result is
    ``{output_uri}/{execution id}/monitoring_result.json`` (the stack's ``MonitoringOutputUri``,
    docs/CONTRACTS.md §3: one ``get_object``); without ``output_uri``, and for a failed run (its
    reason), the monitor job is asked (``list_pipeline_execution_steps``, ``describe_processing_job``).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from .. import executions
    from ..clients.errors import is_not_found

    sm = clients.sagemaker
    summaries: list[dict[str, Any]] = []
    try:
        for page in sm.get_paginator("list_pipeline_executions").paginate(
                PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending",
                PaginationConfig={"PageSize": min(100, limit)}):
            summaries += [s for s in page.get("PipelineExecutionSummaries", [])
                          if s.get("PipelineExecutionStatus") in executions.TERMINAL]
            if len(summaries) >= limit:
                break
        out = []
        for summary in reversed(summaries[:limit]):
            arn = summary["PipelineExecutionArn"]
            execution = {"PipelineExecutionArn": arn, "PipelineExecutionStatus": summary["PipelineExecutionStatus"],
                         "CreationTime": summary.get("StartTime"), "PipelineName": pipeline,
                         "PipelineExecutionDisplayName": summary.get("PipelineExecutionDisplayName")}
            if summary.get("PipelineExecutionFailureReason"):
                execution["FailureReason"] = summary["PipelineExecutionFailureReason"]
            if output_uri and execution["PipelineExecutionStatus"] == "Succeeded":
                run = MonitorRun(execution={**execution, "PipelineExecutionId": arn.rsplit("/", 1)[-1]},
                                 output_uri=f"{output_uri.rstrip('/')}/{arn.rsplit('/', 1)[-1]}")
                run.result = read_result(clients, run.output_uri)
            else:
                run = read_run(clients, execution, executions.steps(sm, arn))
            out.append(run)
    except ClientError as exc:
        if is_not_found(exc):
            return []
        raise _client_error(f"listing the executions of {pipeline}")(exc) from None
    except BotoCoreError as exc:
        raise StsmonError(f"listing the executions of {pipeline} failed: {exc}") from None
    return out
