"""Local meaning of the monitoring stack's scheduling and CloudWatch resources.

- ``AWS::Scheduler::Schedule``: recorded under ``scheduler/schedules/``; the
  local scheduler process (:mod:`stsmon.monitoring.scheduler`) runs it. Only
  SageMaker pipeline targets can run locally (the monitoring pipeline).
- ``AWS::CloudWatch::Alarm``: recorded under ``metrics/alarms/``; evaluated
  against the local metrics store after each monitoring run
  (:mod:`stsmon.monitoring.metrics`).
- ``AWS::CloudWatch::Dashboard``: its body kept under ``metrics/dashboards/``
  (``stsmon report`` is the local view of the same metrics).

Set ``STSMON_SCHEDULER_AUTOSTART=0`` to record schedules without starting the
scheduler process (tests; ``stsmon monitor schedule start`` starts it later).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from stscontracts import schedule

from ..clock import iso_seconds
from ..errors import StsmonError
from ..fileio import write_json_atomic
from ..localcloud.handlers import (
    DeployContext,
    DeployedResource,
    HandlerResult,
    ResourceHandler,
    is_resolved,
    register,
)
from ..localcloud.pipelines import pipelines_dir
from . import metrics, scheduler

AUTOSTART_ENV = "STSMON_SCHEDULER_AUTOSTART"
_PIPELINE_ARN = re.compile(r"^arn:[\w-]+:sagemaker:[\w-]*:\d*:pipeline/(.+)$")


def _autostart() -> bool:
    return os.environ.get(AUTOSTART_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _name(props: dict[str, Any], key: str, ctx: DeployContext, logical_id: str) -> str:
    """The resource's name, or CloudFormation's style of generated one ({stack}-{logical id})."""
    value = props.get(key)
    return str(value) if value else f"{ctx.stack_name}-{logical_id}"


def pipeline_for_arn(ctx: DeployContext, arn: str) -> str:
    """The locally deployed pipeline whose ARN is ``arn`` (ARNs carry lower-cased names)."""
    folder = pipelines_dir(ctx.state)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if str(record.get("PipelineArn", "")).lower() == arn.lower():
            return record["PipelineName"]
    raise StsmonError(f"the schedule's target pipeline {arn} is not deployed locally")


@register("AWS::Scheduler::Schedule")
class ScheduleHandler(ResourceHandler):
    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        expression = props.get("ScheduleExpression")
        if not expression:
            raise StsmonError("ScheduleExpression is required")
        if is_resolved(expression) and is_resolved(props.get("ScheduleExpressionTimezone", "UTC")):
            try:
                schedule.parse(str(expression), str(props.get("ScheduleExpressionTimezone") or "UTC"))
            except schedule.ScheduleError as exc:
                raise StsmonError(exc.message) from None
        if props.get("State", "ENABLED") not in ("ENABLED", "DISABLED") and is_resolved(props.get("State")):
            raise StsmonError(f"State {props.get('State')!r} is not ENABLED or DISABLED")
        target = props.get("Target") or {}
        arn = target.get("Arn")
        if not arn:
            raise StsmonError("Target.Arn is required")
        if is_resolved(arn) and not _PIPELINE_ARN.match(str(arn)):
            raise StsmonError(f"Target.Arn {arn}: only SageMaker pipeline targets run locally")

    def _record(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], created: str | None) -> dict[str, Any]:
        name = _name(props, "Name", ctx, logical_id)
        target = props["Target"]
        params = ((target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList")) or []
        return {
            "Name": name,
            "GroupName": props.get("GroupName") or "default",
            "Arn": ctx.env.arn("scheduler", f"schedule/{props.get('GroupName') or 'default'}/{name}"),
            "ScheduleExpression": props["ScheduleExpression"],
            "ScheduleExpressionTimezone": props.get("ScheduleExpressionTimezone") or "UTC",
            "State": props.get("State") or "ENABLED",
            "Description": props.get("Description", ""),
            "TargetArn": target["Arn"],
            "RoleArn": target.get("RoleArn") or "",
            "PipelineName": pipeline_for_arn(ctx, str(target["Arn"])),
            "Parameters": {str(p["Name"]): str(p["Value"]) for p in params},
            "CreatedAt": created or iso_seconds(ctx.clock.now()),
        }

    def _apply(self, ctx: DeployContext, record: dict[str, Any]) -> HandlerResult:
        scheduler.save_schedule(ctx.state, record)
        if _autostart():
            info = scheduler.ensure(ctx.state)
            if info:
                ctx.echo(f"scheduler: {record['Name']} ({record['ScheduleExpression']}) runs {record['PipelineName']}; "
                         f"process {info['pid']}, log {info['log']}")
        return HandlerResult(physical_id=record["Name"], attributes={"Arn": record["Arn"]})

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        return self._apply(ctx, self._record(ctx, logical_id, props, None))

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        record = self._record(ctx, logical_id, props, None)
        if record["Name"] != previous.physical_id:
            scheduler.delete_schedule(ctx.state, previous.physical_id)
        return self._apply(ctx, record)

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        scheduler.delete_schedule(ctx.state, previous.physical_id)
        if _autostart() or not scheduler.list_schedules(ctx.state):
            scheduler.ensure(ctx.state)

    def refresh(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> None:
        if _autostart() and scheduler.list_schedules(ctx.state) and not scheduler.process_info(ctx.state):
            info = scheduler.ensure(ctx.state)
            if info:
                ctx.echo(f"scheduler: restarted (process {info['pid']})")
        return None


@register("AWS::CloudWatch::Alarm")
class AlarmHandler(ResourceHandler):
    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        metrics.check_alarm_properties(props, "alarm", is_known=is_resolved)

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        metrics.check_alarm_properties(props, "alarm")
        name = _name(props, "AlarmName", ctx, logical_id)
        arn = ctx.env.arn("cloudwatch", f"alarm:{name}")
        metrics.save_alarm(ctx.state, name, arn, props, now=ctx.clock.now())
        return HandlerResult(physical_id=name, attributes={"Arn": arn})

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        name = _name(props, "AlarmName", ctx, logical_id)
        if name != previous.physical_id:
            metrics.delete_alarm(ctx.state, previous.physical_id)
        return self.create(ctx, logical_id, props)

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        metrics.delete_alarm(ctx.state, previous.physical_id)


@register("AWS::CloudWatch::Dashboard")
class DashboardHandler(ResourceHandler):
    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        body = props.get("DashboardBody")
        if not body:
            raise StsmonError("DashboardBody is required")

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        name = _name(props, "DashboardName", ctx, logical_id)
        try:
            body = json.loads(props["DashboardBody"]) if isinstance(props["DashboardBody"], str) else props["DashboardBody"]
        except ValueError as exc:
            raise StsmonError(f"DashboardBody of {name} is not JSON: {exc}") from None
        path = metrics.dashboards_dir(ctx.state) / f"{name}.json"
        write_json_atomic(path, {"DashboardName": name, "DashboardBody": body})
        return HandlerResult(physical_id=name, attributes={})

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        name = _name(props, "DashboardName", ctx, logical_id)
        if name != previous.physical_id:
            (metrics.dashboards_dir(ctx.state) / f"{previous.physical_id}.json").unlink(missing_ok=True)
        return self.create(ctx, logical_id, props)

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        (metrics.dashboards_dir(ctx.state) / f"{previous.physical_id}.json").unlink(missing_ok=True)
