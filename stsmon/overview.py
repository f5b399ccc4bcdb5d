"""What is deployed and how it is doing: the data behind ``stsmon status``.

:func:`local_status` reads only the local state folder (no process is
started, nothing is written except the executor's reconciliation of dead
executions). :func:`aws_status` asks CloudFormation, SageMaker and
EventBridge Scheduler with the clients it is given (tests pass stubbed ones).
Both return plain JSON-able dicts of the same shape, so ``--json`` prints
them as they are and the terminal view formats either one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stscontracts.config import Config

from .errors import NotDeployedError, StsmonError
from .state import StateDir

STACK_KINDS = ("foundation", "training", "serving", "monitoring")


def _latest_execution(executions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not executions:
        return None
    newest = executions[0]
    return {
        "execution_id": newest.get("PipelineExecutionId") or str(newest.get("PipelineExecutionArn", "")).rsplit("/", 1)[-1],
        "status": newest.get("PipelineExecutionStatus"),
        "started": newest.get("CreationTime") or newest.get("StartTime"),
        "ended": newest.get("EndTime") or newest.get("LastModifiedTime"),
        "failure_reason": newest.get("FailureReason"),
    }


def _read_json(path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _package_row(package: dict[str, Any], metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "arn": package.get("ModelPackageArn"),
        "version": package.get("ModelPackageVersion"),
        "approval": package.get("ModelApprovalStatus"),
        "created": str(package.get("CreationTime")),
        "metrics": metrics,
    }


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


def local_status(state: StateDir, now: datetime) -> dict[str, Any]:
    """Everything deployed in one local state folder, with its latest results."""
    from .endpoint.process import capture_stats, list_records
    from .localcloud.deployer import load_records
    from .localcloud.executions import list_executions
    from .monitoring import scheduler
    from .monitoring.runs import list_results

    records = load_records(state)
    outputs: dict[str, Any] = {}
    stacks = []
    order = {kind: i for i, kind in enumerate(STACK_KINDS)}
    for name, record in sorted(records.items(), key=lambda kv: (order.get(kv[0].rsplit("-", 1)[-1], len(order)), kv[0])):
        outputs.update(record.outputs)
        stacks.append({
            "name": name,
            "status": "DEPLOYED",
            "resources": len(record.resources),
            "outputs": {k: v for k, v in record.outputs.items() if not k.startswith("ExportsOutput")},
        })

    pipelines = []
    for key in ("TrainingPipelineName", "MonitoringPipelineName"):
        name = outputs.get(key)
        if name:
            pipelines.append({"name": name, "latest": _latest_execution(list_executions(state, str(name)))})

    packages: list[dict[str, Any]] = []
    group = outputs.get("ModelPackageGroupName")
    if group and state.registry_db.exists():
        from .localcloud.registry import Registry

        registry = Registry(state.registry_db)
        listed = registry.list_model_packages(ModelPackageGroupName=str(group), SortBy="CreationTime", SortOrder="Descending")
        for summary in listed.get("ModelPackageSummaryList", []):
            package = registry.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            uri = (((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
            metrics = _metrics_of_evaluation(_read_json(state.s3_path(uri))) if uri else {}
            packages.append(_package_row(package, metrics))

    endpoints = []
    for record in list_records(state):
        name = str(record.get("endpoint_name"))
        endpoints.append({
            "name": name,
            "running": bool(record.get("running")),
            "status": record.get("status"),
            "url": record.get("url"),
            "package": (record.get("info") or {}).get("ModelPackageArn"),
            "capture": capture_stats(state, name) if record.get("capture") else {},
            "log": record.get("log"),
        })

    sched = scheduler.status(state, now)
    monitoring = None
    if outputs.get("MonitoringPipelineName"):
        results = list_results(state, str(outputs["MonitoringPipelineName"]))
        if results:
            last = results[-1]
            result = last.result or {}
            monitoring = {
                "execution_id": last.execution.get("PipelineExecutionId"),
                "status": last.status,
                "failure_reason": last.failure_reason or None,
                "window": result.get("window"),
                "counts": result.get("counts"),
                "violations": [v.get("metric_name") for v in result.get("violations") or []],
                "report": str(last.output_dir / "report.html") if last.output_dir else None,
            }

    return {
        "target": "local",
        "state_dir": str(state.root),
        "stacks": stacks,
        "pipelines": pipelines,
        "model_package_group": group,
        "packages": packages,
        "endpoints": endpoints,
        "schedules": {"scheduler_running": sched["running"], "schedules": sched["schedules"]},
        "last_monitoring": monitoring,
    }


def aws_status(cfg: Config, *, cfn: Any, sagemaker: Any, scheduler: Any) -> dict[str, Any]:
    """The deployed AWS stacks, pipelines, packages, endpoint and schedule."""
    from botocore.exceptions import ClientError

    stacks = []
    outputs: dict[str, str] = {}
    for kind in STACK_KINDS:
        name = cfg.stack_name(kind)
        try:
            described = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError as exc:
            if "does not exist" in str(exc):
                stacks.append({"name": name, "status": "NOT_DEPLOYED", "resources": None, "outputs": {}})
                continue
            raise StsmonError(f"describe_stacks({name}) failed: {exc}") from None
        stack_outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        outputs.update(stack_outputs)
        stacks.append({
            "name": name,
            "status": described.get("StackStatus"),
            "resources": None,
            "outputs": {k: v for k, v in stack_outputs.items() if not k.startswith("ExportsOutput")},
        })
    if not any(s["status"] != "NOT_DEPLOYED" for s in stacks):
        raise NotDeployedError(
            f"none of the stacks {', '.join(cfg.stack_name(k) for k in STACK_KINDS)} is deployed in {cfg.region}: "
            "run `npx cdk deploy --all` (see README, 'On AWS')")

    pipelines = []
    for key in ("TrainingPipelineName", "MonitoringPipelineName"):
        name = outputs.get(key)
        if not name:
            continue
        summaries = sagemaker.list_pipeline_executions(
            PipelineName=name, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
        ).get("PipelineExecutionSummaries", [])
        latest = None
        if summaries:
            described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=summaries[0]["PipelineExecutionArn"])
            latest = _latest_execution([described])
        pipelines.append({"name": name, "latest": latest})

    group = outputs.get("ModelPackageGroupName") or cfg.model_package_group_name
    packages = []
    try:
        listed = sagemaker.list_model_packages(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=10
        ).get("ModelPackageSummaryList", [])
    except ClientError as exc:
        listed = []
        if "does not exist" not in str(exc):
            raise StsmonError(f"list_model_packages({group}) failed: {exc}") from None
    for summary in listed:
        packages.append(_package_row(summary, {}))

    endpoints = []
    endpoint_name = outputs.get("EndpointName")
    if endpoint_name:
        try:
            described = sagemaker.describe_endpoint(EndpointName=endpoint_name)
            capture = described.get("DataCaptureConfig") or {}
            endpoints.append({
                "name": endpoint_name,
                "running": described.get("EndpointStatus") == "InService",
                "status": described.get("EndpointStatus"),
                "url": None,
                "package": None,
                "capture": {"enabled": capture.get("EnableCapture"), "sampling": capture.get("CurrentSamplingPercentage"),
                            "destination": capture.get("DestinationS3Uri")},
                "log": None,
            })
        except ClientError as exc:
            endpoints.append({"name": endpoint_name, "running": False, "status": f"unavailable: {exc}",
                              "url": None, "package": None, "capture": {}, "log": None})

    schedules = []
    schedule_name = outputs.get("MonitoringScheduleName")
    if schedule_name:
        try:
            described = scheduler.get_schedule(Name=schedule_name)
            schedules.append({"name": schedule_name, "expression": described.get("ScheduleExpression"),
                              "state": described.get("State"), "pipeline": outputs.get("MonitoringPipelineName"),
                              "next": None, "last": None, "last_execution": None, "last_status": None})
        except ClientError as exc:
            schedules.append({"name": schedule_name, "expression": None, "state": f"unavailable: {exc}",
                              "pipeline": None, "next": None, "last": None, "last_execution": None, "last_status": None})

    monitoring = None
    monitor_pipeline = next((p for p in pipelines if p["name"] == outputs.get("MonitoringPipelineName")), None)
    if monitor_pipeline and monitor_pipeline["latest"]:
        latest = monitor_pipeline["latest"]
        monitoring = {"execution_id": latest["execution_id"], "status": latest["status"],
                      "failure_reason": latest["failure_reason"], "window": None, "counts": None,
                      "violations": None, "report": outputs.get("MonitoringOutputUri")}

    return {
        "target": "aws",
        "region": cfg.region,
        "stacks": stacks,
        "pipelines": pipelines,
        "model_package_group": group,
        "packages": packages,
        "endpoints": endpoints,
        "schedules": {"scheduler_running": None, "schedules": schedules},
        "last_monitoring": monitoring,
    }


def format_status(status: dict[str, Any]) -> list[str]:
    """The terminal view of :func:`local_status` / :func:`aws_status`."""
    lines: list[str] = []
    where = status.get("state_dir") or status.get("region")
    lines.append(f"Target: {status['target']} ({where})")
    lines.append("")
    lines.append("Stacks:")
    if not status["stacks"]:
        lines.append("  (none deployed: run `stsmon deploy`)")
    for stack in status["stacks"]:
        extra = f", {stack['resources']} resources" if stack.get("resources") is not None else ""
        lines.append(f"  {stack['name']:<22} {stack['status']}{extra}")
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
