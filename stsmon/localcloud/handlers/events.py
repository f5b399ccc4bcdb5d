"""Local meaning of ``AWS::Events::Rule``: a rule on the local event bus (:mod:`stsmon.localcloud.events`).

The rule is recorded as deployed (name, ARN, pattern, state, targets) in
``events/rules/{Name}.json``; the local services' events are matched against
it when they happen. Only rules on the default bus with an ``EventPattern``
are supported (a schedule rule has no local meaning here: schedules are
``AWS::Scheduler::Schedule``), and only the pattern features the local matcher
evaluates exactly: anything else is refused at check time, with nothing
deployed. ``Ref`` is the rule's name, ``Arn`` its ARN (CloudFormation's).
"""

from __future__ import annotations

from typing import Any

from ...errors import StsmonError
from .. import events
from . import DeployContext, DeployedResource, HandlerResult, ResourceHandler, is_resolved, register
from .core import generated_name


def _name(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> str:
    return str(props.get("Name") or generated_name(ctx, logical_id))


@register("AWS::Events::Rule")
class RuleHandler(ResourceHandler):
    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        if props.get("EventBusName") not in (None, "default"):
            raise StsmonError(f"{logical_id}: the local event bus is the default one (EventBusName "
                              f"{props['EventBusName']!r} is not supported)")
        if "EventPattern" not in props:
            raise StsmonError(f"{logical_id}: a rule without an EventPattern (a schedule) has no local meaning; "
                              "use AWS::Scheduler::Schedule")
        if is_resolved(props["EventPattern"]):
            events.check_pattern(props["EventPattern"], f"{logical_id}.EventPattern")

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        self.check(ctx, logical_id, props)
        name = _name(ctx, logical_id, props)
        arn = ctx.env.arn("events", f"rule/{name}")
        events.write_rule(ctx.state, {
            "Name": name,
            "Arn": arn,
            "EventPattern": props["EventPattern"],
            "State": props.get("State", "ENABLED"),
            "Targets": [{"Id": t.get("Id"), "Arn": t.get("Arn")} for t in props.get("Targets") or []],
            "Description": props.get("Description", ""),
            "Stack": ctx.stack_name,
        })
        return HandlerResult(name, {"Arn": arn})

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        result = self.create(ctx, logical_id, props)
        if result.physical_id != previous.physical_id:
            events.remove_rule(ctx.state, previous.physical_id)
        return result

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        events.remove_rule(ctx.state, previous.physical_id)
