"""What is deployed and how it is doing: the data behind ``stsmon status`` — one implementation for both targets.

:func:`status` asks CloudFormation (the stacks and their outputs), SageMaker
(latest executions, model packages, the endpoint), S3 (the packages' metrics,
the last monitoring result) and EventBridge Scheduler through the
boto3-shaped clients (:mod:`stsmon.clients`); what only the local runtime
knows (the endpoint's URL and capture counters, the scheduler process and its
next fire time) comes from the target's runtime. It returns a plain
JSON-able dict, so ``--json`` prints it as it is and :func:`format_status`
formats it. Nothing is started or written (but the executor's
reconciliation of dead local executions).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stscontracts import names

from .clients.stacks import STACK_KINDS, describe_stack, outputs_of
from .errors import StsmonError


def _describe(execution: dict[str, Any]) -> dict[str, Any]:
    return {
        "execution_id": str(execution.get("PipelineExecutionArn", "")).rsplit("/", 1)[-1],
        "status": execution.get("PipelineExecutionStatus"),
        "started": _text(execution.get("CreationTime")),
        "ended": _text(execution.get("LastModifiedTime")),
        "failure_reason": execution.get("FailureReason"),
    }


def _text(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value is not None else None)


def _metrics_of_evaluation(report: Any) -> dict[str, float]:
    """``{metric: value}`` of an evaluation.json / statistics.json document."""
    out: dict[str, float] = {}
    if not isinstance(report, dict):
        return out
    for key in ("binary_classification_metrics", "regression_metrics", "multiclass_classification_metrics"):
        for name, entry in (report.get(key) or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float)):
                out[name] = float(entry["value"])
    return out


def _read_json(clients: Any, uri: str) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri[len("s3://"):].partition("/")
    try:
        return json.loads(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, BotoCoreError, ValueError):
        return None


def _calls(what: str):
    """Turn a failed AWS call into a message naming it."""
    from contextlib import contextmanager

    from botocore.exceptions import BotoCoreError, ClientError

    from .clients.errors import error_message

    @contextmanager
    def guard():
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise StsmonError(f"{what} failed: {error_message(exc)}") from None

    return guard()


def status(clients: Any, now: datetime) -> dict[str, Any]:
    """Everything deployed on the clients' target, with its latest results."""
    from botocore.exceptions import ClientError

    from .clients.errors import is_not_found
    from .monitoring import runs

    cfg = clients.config
    stacks, outputs = [], {}
    for kind in STACK_KINDS:
        name = cfg.stack_name(kind)
        described = describe_stack(clients, name)
        if described is None:
            stacks.append({"name": name, "status": "NOT_DEPLOYED", "outputs": {}})
            continue
        stack_outputs = outputs_of(described)
        outputs.update(stack_outputs)
        stacks.append({"name": name, "status": described.get("StackStatus"),
                       "outputs": {k: v for k, v in stack_outputs.items() if not k.startswith("ExportsOutput")}})

    sm = clients.sagemaker
    pipelines = []
    for key in ("TrainingPipelineName", "MonitoringPipelineName"):
        name = outputs.get(key)
        if not name:
            continue
        try:
            summaries = sm.list_pipeline_executions(PipelineName=name, SortBy="CreationTime", SortOrder="Descending",
                                                    MaxResults=1).get("PipelineExecutionSummaries", [])
        except ClientError as exc:
            if not is_not_found(exc):
                raise StsmonError(f"reading the executions of {name} failed: {exc}") from None
            summaries = []  # named by a stack output, not (or no longer) there
        with _calls(f"describe_pipeline_execution of {name}"):
            latest = _describe(sm.describe_pipeline_execution(PipelineExecutionArn=summaries[0]["PipelineExecutionArn"])) \
                if summaries else None
        pipelines.append({"name": name, "latest": latest})

    group = outputs.get("ModelPackageGroupName") or cfg.model_package_group_name
    packages = []
    try:
        listed = sm.list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending",
                                        MaxResults=10).get("ModelPackageSummaryList", [])
    except ClientError as exc:
        if not is_not_found(exc):
            raise StsmonError(f"list_model_packages({group}) failed: {exc}") from None
        listed = []
    for summary in listed:
        with _calls(f"describe_model_package({summary['ModelPackageArn']})"):
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        uri = (((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
        packages.append({"arn": package.get("ModelPackageArn"), "version": package.get("ModelPackageVersion"),
                         "approval": package.get("ModelApprovalStatus"), "created": _text(package.get("CreationTime")),
                         "metrics": _metrics_of_evaluation(_read_json(clients, uri)) if uri else {}})

    endpoints = []
    endpoint_name = outputs.get("EndpointName")
    if endpoint_name:
        row: dict[str, Any] = {"name": endpoint_name, "running": False, "status": None, "url": None,
                               "package": outputs.get("ServedModelPackageArn"), "capture": {}, "log": None}
        try:
            described = sm.describe_endpoint(EndpointName=endpoint_name)
            capture = described.get("DataCaptureConfig") or {}
            row.update(running=described.get("EndpointStatus") == "InService", status=described.get("EndpointStatus"),
                       url=clients.runtime.endpoint_url(endpoint_name),
                       capture={"enabled": capture.get("EnableCapture"), "sampling": capture.get("CurrentSamplingPercentage"),
                                "destination": capture.get("DestinationS3Uri")} if capture else {})
        except ClientError as exc:
            row["status"] = f"unavailable: {exc}"
        row.update(clients.runtime.endpoint_details(endpoint_name))
        endpoints.append(row)

    schedules = []
    schedule_name = outputs.get("MonitoringScheduleName")
    if schedule_name:
        row = {"name": schedule_name, "expression": None, "state": None, "pipeline": outputs.get("MonitoringPipelineName"),
               "next": None, "last": None, "last_execution": None, "last_status": None}
        try:
            described = clients.scheduler.get_schedule(Name=schedule_name)
            row.update(expression=described.get("ScheduleExpression"), state=described.get("State"))
        except ClientError as exc:
            row["state"] = f"unavailable: {exc}"
        row.update(clients.runtime.schedule_details(schedule_name, now))
        schedules.append(row)

    monitoring = None
    if outputs.get("MonitoringPipelineName"):
        found = runs.list_runs(clients, outputs["MonitoringPipelineName"], output_uri=outputs.get("MonitoringOutputUri"), limit=1)
        if found:
            last = found[-1]
            result = last.result or {}
            report = f"{last.output_uri}/{names.REPORT_FILE}" if last.output_uri and last.result else None
            monitoring = {
                "execution_id": last.execution_id,
                "status": last.status,
                "failure_reason": last.failure_reason or None,
                "window": result.get("window"),
                "counts": result.get("counts"),
                "violations": [v.get("metric_name") for v in result.get("violations") or []],
                "report": clients.runtime.show_uri(report) if report else None,
            }

    return {
        "target": clients.target,
        "where": clients.runtime.where(),
        "region": clients.region,
        "state_dir": str(clients.state.root),
        "stacks": stacks,
        "deployed": any(s["status"] != "NOT_DEPLOYED" for s in stacks),
        "pipelines": pipelines,
        "model_package_group": group if any(s["status"] != "NOT_DEPLOYED" for s in stacks) else None,
        "packages": packages,
        "endpoints": endpoints,
        "schedules": {"scheduler_running": clients.runtime.scheduler_running(), "schedules": schedules},
        "last_monitoring": monitoring,
    }


def format_status(status: dict[str, Any]) -> list[str]:
    """The terminal view of :func:`status`."""
    lines: list[str] = []
    lines.append(f"Target: {status['target']} ({status['where']})")
    lines.append("")
    lines.append("Stacks:")
    if not status["deployed"]:
        lines.append("  (none deployed)")
    for stack in status["stacks"]:
        lines.append(f"  {stack['name']:<22} {stack['status']}")
    lines.append("")
    lines.append("Pipelines:")
    if not status["pipelines"]:
        lines.append("  (none)")
    for pipe in status["pipelines"]:
        latest = pipe["latest"]
        if latest is None:
            lines.append(f"  {pipe['name']:<22} no executions")
        else:
            reason = f" ({latest['failure_reason']})" if latest.get("failure_reason") else ""
            lines.append(f"  {pipe['name']:<22} latest {latest['execution_id']}: {latest['status']}{reason}")
    lines.append("")
    lines.append(f"Model packages ({status.get('model_package_group') or 'no group deployed'}):")
    if not status["packages"]:
        lines.append("  (none registered: run `stsmon train`)")
    for pkg in status["packages"]:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(pkg["metrics"].items()) if k in ("accuracy", "f1", "auc", "r2", "rmse"))
        lines.append(f"  v{pkg['version']:<4} {pkg['approval']:<22} {metrics}")
    lines.append("")
    lines.append("Endpoints:")
    if not status["endpoints"]:
        lines.append("  (none: deploy the serving stack)")
    for ep in status["endpoints"]:
        state = "running" if ep["running"] else (ep.get("status") or "stopped")
        capture = ep.get("capture") or {}
        if "written" in capture:
            cap = f"capture: {capture['written']} records written, {capture.get('dropped', 0)} dropped"
        elif capture:
            cap = f"capture: enabled={capture.get('enabled')} sampling={capture.get('sampling')}%"
        else:
            cap = ""
        serving = f"serving v{str(ep['package']).rsplit('/', 1)[-1]}  " if ep.get("package") else ""
        lines.append(f"  {ep['name']:<22} {state:<10} {ep.get('url') or ''}  {serving}{cap}".rstrip())
    lines.append("")
    lines.append("Schedules:")
    sched = status["schedules"]
    if not sched["schedules"]:
        lines.append("  (none)")
    for row in sched["schedules"]:
        nxt = f", next {row['next']}" if row.get("next") else ""
        lines.append(f"  {row['name']:<22} {row.get('expression')} {row.get('state')}{nxt}")
    if sched.get("scheduler_running") is not None and sched["schedules"]:
        lines.append(f"  local scheduler process: {'running' if sched['scheduler_running'] else 'not running'}")
    lines.append("")
    mon = status.get("last_monitoring")
    lines.append("Last monitoring run:")
    if not mon:
        lines.append("  (none: run `stsmon monitor run`)")
    else:
        reason = f": {mon['failure_reason']}" if mon.get("failure_reason") else ""
        lines.append(f"  {mon['execution_id']}: {mon['status']}{reason}")
        if mon.get("window"):
            lines.append(f"  window {mon['window'].get('start')} .. {mon['window'].get('end')}")
        if mon.get("counts"):
            counts = mon["counts"]
            lines.append("  " + ", ".join(f"{k} {counts[k]}" for k in ("captured", "labelled", "matched") if k in counts))
        if mon.get("violations"):
            lines.append(f"  violations: {', '.join(mon['violations'])}")
        if mon.get("report"):
            lines.append(f"  report: {mon['report']}")
    return lines
