"""The local EventBridge: rules as deployed, pattern matching as EventBridge does it, the registry's events.

The matcher is checked against moto's EventBridge pattern matcher (moto 5.2.5,
``moto/events/models.py`` ``EventPattern.matches_event``, which moto's
``put_events`` uses to route events to rule targets); the event's shape is the
AWS docs' example ("Events that Amazon SageMaker sends to Amazon EventBridge",
Model package state change: ``detail`` is the package as DescribeModelPackage
shows it, ``resources`` its ARN).
"""

from __future__ import annotations

import json

import pytest

from stscontracts import names
from stsmon.errors import StsmonError
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud import events as bus
from stsmon.localcloud.handlers import DeployContext, DeployedResource
from stsmon.localcloud.handlers.events import RuleHandler
from stsmon.localcloud.registry import Registry
from stsmon.state import StateDir

GROUP = "stsPackageGroup"
#: The foundation stack's rule (stacks/constructs/registry_events.py), as synthesized.
PATTERN = {
    "source": [names.EVENT_SOURCE_SAGEMAKER],
    "detail-type": [names.MODEL_PACKAGE_STATE_CHANGE],
    "detail": {"ModelPackageGroupName": [GROUP], "ModelApprovalStatus": list(names.NOTIFIED_APPROVAL_STATUSES)},
}
TOPIC = "arn:aws:sns:us-east-1:000000000000:sts-alarms"
SPEC = {"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"}],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}


def _event(status="PendingManualApproval", group=GROUP, source="aws.sagemaker", detail_type=names.MODEL_PACKAGE_STATE_CHANGE):
    return {"version": "0", "id": "x", "detail-type": detail_type, "source": source, "account": "000000000000",
            "time": "2033-05-17T12:30:00Z", "region": "us-east-1", "resources": [f"arn:aws:sagemaker:us-east-1:000000000000:model-package/{group}/2"],
            "detail": {"ModelPackageGroupName": group, "ModelPackageVersion": 2, "ModelApprovalStatus": status,
                       "CreationTime": "2033-05-17T12:30:00Z", "Tags": {}}}


CASES = [
    (PATTERN, _event()),
    (PATTERN, _event("Approved")),
    (PATTERN, _event("Rejected")),
    (PATTERN, _event(group="otherGroup")),
    (PATTERN, _event(source="aws.events")),
    (PATTERN, _event(detail_type="SageMaker Model State Change")),
    ({"detail": {"ModelApprovalStatus": [{"prefix": "Pending"}]}}, _event()),
    ({"detail": {"ModelApprovalStatus": [{"prefix": "Pending"}]}}, _event("Approved")),
    ({"detail": {"ApprovalDescription": [{"exists": False}]}}, _event()),
    ({"detail": {"ApprovalDescription": [{"exists": True}]}}, _event()),
    ({"detail": {"ModelApprovalStatus": [{"anything-but": "Rejected"}]}}, _event()),
    ({"detail": {"ModelApprovalStatus": [{"anything-but": ["Rejected", "Approved"]}]}}, _event("Approved")),
    ({"detail": {"ModelApprovalStatus": [{"anything-but": {"prefix": "Pend"}}]}}, _event()),
    ({"detail": {"ModelPackageVersion": [2]}}, _event()),
    ({"detail": {"ModelPackageVersion": ["2"]}}, _event()),
    ({"resources": [_event()["resources"][0]]}, _event()),
    ({"detail": {"Missing": ["x"]}}, _event()),
    ({"detail": {"ModelApprovalStatus": {"nested": ["x"]}}}, _event()),
]


@pytest.mark.parametrize("pattern,event", CASES)
def test_the_matcher_agrees_with_moto(pattern, event):
    from moto.events.models import EventPattern

    expected = EventPattern(json.dumps(pattern), pattern).matches_event(event)
    assert bus.matches(pattern, event) is expected


def test_only_pending_and_approved_of_this_group_match_the_rule():
    assert [bus.matches(PATTERN, _event(s)) for s in ("PendingManualApproval", "Approved", "Rejected")] == [True, True, False]


@pytest.mark.parametrize("pattern,message", [
    ({"detail": {"ModelPackageVersion": [{"numeric": [">", 1]}]}}, "not numeric"),
    ({"detail": {"ModelApprovalStatus": []}}, "empty list"),
    ({"source": "aws.sagemaker"}, "must be a list"),
    ({}, "non-empty"),
])
def test_patterns_the_local_bus_cannot_evaluate_are_refused(pattern, message):
    with pytest.raises(StsmonError, match=message):
        bus.check_pattern(pattern)


def _ctx(state, clock):
    return DeployContext(state=state, env=LocalEnvironment(), stack_name="sts-foundation", clock=clock)


def test_the_rule_is_recorded_replaced_and_removed(tmp_path, clock):
    state = StateDir(tmp_path)
    handler = RuleHandler()
    props = {"Name": "sts-model-package-events", "EventPattern": PATTERN, "State": "ENABLED",
             "Targets": [{"Id": "Target0", "Arn": TOPIC}]}
    result = handler.create(_ctx(state, clock), "Rule", props)
    assert result.physical_id == "sts-model-package-events"
    assert result.attributes == {"Arn": "arn:aws:events:us-east-1:000000000000:rule/sts-model-package-events"}
    (rule,) = bus.load_rules(state)
    assert rule["EventPattern"] == PATTERN and rule["Targets"] == [{"Id": "Target0", "Arn": TOPIC}]
    previous = DeployedResource("Rule", "AWS::Events::Rule", result.physical_id, props, result.attributes)
    handler.update(_ctx(state, clock), "Rule", {**props, "Name": "renamed"}, previous)
    assert [r["Name"] for r in bus.load_rules(state)] == ["renamed"]
    handler.delete(_ctx(state, clock), "Rule", DeployedResource("Rule", "AWS::Events::Rule", "renamed", props))
    assert bus.load_rules(state) == []
    with pytest.raises(StsmonError, match="schedule"):
        handler.check(_ctx(state, clock), "Rule", {"ScheduleExpression": "rate(1 hour)"})


def test_the_registry_sends_an_event_on_registration_and_on_each_status_change(tmp_path, clock):
    state = StateDir(tmp_path)
    RuleHandler().create(_ctx(state, clock), "Rule", {"Name": "sts-model-package-events", "EventPattern": PATTERN,
                                                      "Targets": [{"Id": "Target0", "Arn": TOPIC}]})
    env = LocalEnvironment()
    registry = Registry(state.registry_db, env=env, clock=clock, on_change=bus.registry_listener(state, env, clock))
    registry.create_model_package_group(ModelPackageGroupName=GROUP)
    marker = bus.log_size(state)
    arn = registry.create_model_package(ModelPackageGroupName=GROUP, InferenceSpecification=SPEC,
                                        ModelApprovalStatus="PendingManualApproval")["ModelPackageArn"]
    registry.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="looks good")
    registry.update_model_package(ModelPackageArn=arn, ApprovalDescription="only the description")  # no status change
    registry.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    registry.close()
    entries = bus.read_events(state, marker)
    assert [e["Event"]["detail"]["ModelApprovalStatus"] for e in entries] == ["PendingManualApproval", "Approved", "Rejected"]
    first = entries[0]["Event"]
    assert first["source"] == "aws.sagemaker" and first["detail-type"] == "SageMaker Model Package State Change"
    assert first["resources"] == [arn] and first["account"] == "000000000000" and first["region"] == "us-east-1"
    assert first["detail"]["ModelPackageArn"] == arn and first["detail"]["ModelPackageVersion"] == 1
    assert first["detail"]["ModelPackageStatus"] == "Completed" and first["time"].endswith("Z")
    assert entries[1]["Event"]["detail"]["ApprovalDescription"] == "looks good"
    # Pending and Approved reach the alarm topic; Rejected is recorded but no rule wants it.
    assert [[d["TargetArn"] for d in e["Deliveries"]] for e in entries] == [[TOPIC], [TOPIC], []]
    assert bus.describe_entry(entries[0]) == (
        "SageMaker Model Package State Change: stsPackageGroup/1 PendingManualApproval -> sts-alarms (rule sts-model-package-events)")


def test_a_registry_without_a_listener_sends_nothing(tmp_path, clock):
    state = StateDir(tmp_path)
    registry = Registry(state.registry_db, clock=clock)
    registry.create_model_package_group(ModelPackageGroupName=GROUP)
    registry.create_model_package(ModelPackageGroupName=GROUP, InferenceSpecification=SPEC)
    registry.close()
    assert bus.read_events(state) == []
