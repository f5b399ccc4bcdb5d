"""``stsmon monitor run --target aws``: start the AWS monitoring pipeline now and show its result.

boto3 clients are passed in (tests use botocore's Stubber). The result is
read from the monitor step's ``monitoring`` output in S3, the alarm states
from CloudWatch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from stscontracts import names

from ..errors import StsmonError

TERMINAL = ("Succeeded", "Failed", "Stopped")


def _client_error(exc: Exception, what: str) -> StsmonError:
    return StsmonError(f"{what} failed: {exc}")


def monitoring_alarm_prefixes(prefix: str) -> tuple[str, ...]:
    """Name prefixes of the monitoring stack's alarms: quality ({p}-quality-*) and the monitor's own
    ({p}-monitor-failed, {p}-monitor-no-result)."""
    return (f"{prefix}-quality-", f"{prefix}-monitor-")


def describe_alarms(cloudwatch: Any, prefixes: str | tuple[str, ...]) -> list[dict[str, Any]]:
    """Metric alarms whose names start with one of ``prefixes`` (every page)."""
    wanted = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    common = os.path.commonprefix(list(wanted))
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"AlarmNamePrefix": common, "AlarmTypes": ["MetricAlarm"]}
    while True:
        page = cloudwatch.describe_alarms(**request)
        found += [a for a in page.get("MetricAlarms", []) if a["AlarmName"].startswith(wanted)]
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def run_aws_monitoring(
    sm: Any,
    s3: Any,
    cloudwatch: Any,
    *,
    pipeline: str,
    parameters: dict[str, str],
    alarm_prefix: str | tuple[str, ...],
    on_step: Callable[[dict[str, Any]], None] = lambda step: None,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    timeout_seconds: float = 3600.0,
    now: datetime,
) -> dict[str, Any]:
    """Start (``now`` names the execution), wait, read the result. Returns {execution, result, alarms, output_uri}."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        started = sm.start_pipeline_execution(
            PipelineName=pipeline,
            PipelineExecutionDisplayName=f"monitor-manual-{now:%Y%m%dT%H%M%S}",
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        )
    except (ClientError, BotoCoreError) as exc:
        raise _client_error(exc, f"starting pipeline {pipeline}") from None
    arn = started["PipelineExecutionArn"]
    waited = 0.0
    seen: dict[str, str] = {}
    while True:
        try:
            execution = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
            steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn).get("PipelineExecutionSteps", [])
        except (ClientError, BotoCoreError) as exc:
            raise _client_error(exc, f"reading execution {arn}") from None
        for step in steps:
            if seen.get(step["StepName"]) != step.get("StepStatus"):
                seen[step["StepName"]] = step.get("StepStatus")
                on_step(step)
        if execution["PipelineExecutionStatus"] in TERMINAL:
            break
        if waited >= timeout_seconds:
            raise StsmonError(f"execution {arn} still {execution['PipelineExecutionStatus']} after {timeout_seconds:.0f} s")
        sleep(poll_seconds)
        waited += poll_seconds
    out: dict[str, Any] = {"execution": execution, "result": None, "output_uri": None, "alarms": [], "exit_message": ""}
    step = next((s for s in steps if s["StepName"] == names.STEP_MONITOR), None)
    job_arn = (((step or {}).get("Metadata") or {}).get("ProcessingJob") or {}).get("Arn")
    try:
        if job_arn:
            job = sm.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
            # monitor.py's reason when it failed the job (a Failed window: exit 3): /opt/ml/output/message
            out["exit_message"] = job.get("ExitMessage", "")
            for output in job["ProcessingOutputConfig"]["Outputs"]:
                if output["OutputName"] == names.OUTPUT_MONITORING:
                    out["output_uri"] = output["S3Output"]["S3Uri"]
            if out["output_uri"]:
                bucket, _, prefix = out["output_uri"][len("s3://"):].partition("/")
                try:
                    body = s3.get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{names.RESULT_FILE}")["Body"].read()
                    out["result"] = json.loads(body)
                except ClientError as exc:
                    # A failed job's EndOfJob outputs are not to be relied on: the ExitMessage says why.
                    if execution["PipelineExecutionStatus"] == "Succeeded" or \
                            exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404", "AccessDenied"):
                        raise
                    out["output_uri"] = None
        out["alarms"] = [{"name": a["AlarmName"], "metric": a.get("MetricName"), "state": a["StateValue"],
                          "reason": a.get("StateReason", ""), "threshold": a.get("Threshold"),
                          "comparison": a.get("ComparisonOperator"), "changed": False, "previous": None}
                         for a in describe_alarms(cloudwatch, alarm_prefix)]
    except (ClientError, BotoCoreError) as exc:
        raise _client_error(exc, "reading the monitoring result") from None
    return out
