"""The deploy plan on its own: template against record, in memory — no state folder, no handlers,
no file opened (the plan is what ``stsmon deploy`` prints and then applies)."""

from __future__ import annotations

import builtins
import io

import pytest

from stsmon.errors import StsmonError
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.handlers import DeployedResource, DeployError, Unresolved
from stsmon.localcloud.plan import StackRecord, plan_stack

ENV = LocalEnvironment(account="000000000000", region="us-east-1")

TEMPLATE = {
    "Parameters": {
        "BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/hnb659fds/version"},
        "Tags": {"Type": "CommaDelimitedList", "Default": "a, b"},
    },
    "Rules": {"CheckBootstrapVersion": {"Assertions": [{
        "Assert": {"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}]},
        "AssertDescription": "CDK bootstrap stack version 6 required."}]}},
    "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "data", "Tags": {"Ref": "Tags"}}},
        "Policy": {"Type": "AWS::S3::BucketPolicy",
                   "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": {"Statement": []}}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
        "Role": {"Type": "AWS::IAM::Role", "DependsOn": "Policy",
                 "Properties": {"Description": {"Fn::Sub": "reads ${Bucket.Arn}"}}},
        "ProdOnly": {"Type": "AWS::SNS::Topic", "Condition": "IsProd", "Properties": {}},
    },
    "Outputs": {"BucketName": {"Value": {"Ref": "Bucket"}}, "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}},
}


def record(resources: dict[str, DeployedResource], **kw) -> StackRecord:
    return StackRecord(stack_name="s", artifact_id="s", region=kw.get("region", "us-east-1"), account="000000000000",
                       deployed_at="2033-05-17T12:00:00+00:00", assembly="cdk.out", parameters={},
                       resources=resources, order=list(resources), outputs={}, exports={}, imports=[])


def deployed(lid: str, rtype: str, physical: str, props: dict, **attributes) -> DeployedResource:
    return DeployedResource(lid, rtype, physical, props, attributes)


@pytest.fixture(autouse=True)
def no_files(monkeypatch):
    """A plan is pure: any file it opened would fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the plan opened a file: {args[:1]}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)


def test_a_new_stack_creates_everything_in_dependency_order():
    plan = plan_stack("s", TEMPLATE, env=ENV)
    assert plan.order.index("Bucket") < plan.order.index("Policy") < plan.order.index("Role")  # Ref, then DependsOn
    assert "ProdOnly" not in plan.resources  # its condition is false in us-east-1
    assert [(c.action, c.logical_id) for c in plan.changes] == [("create", lid) for lid in plan.order]
    assert plan.parameters == {"BootstrapVersion": "30", "Tags": ["a", "b"]}
    # What exists only after a create is visible as such before it.
    assert plan.properties["Policy"]["Bucket"] == Unresolved("Ref Bucket")
    assert plan.lines() == ["s: new stack, 4 resource(s) to create"] + [
        f"  [+] {TEMPLATE['Resources'][lid]['Type']} {lid}" for lid in plan.order]


def test_against_a_record_keep_update_replace_and_delete():
    prior = record({
        "Bucket": deployed("Bucket", "AWS::S3::Bucket", "data", {"BucketName": "data", "Tags": ["a", "b"]}, Arn="arn:aws:s3:::data"),
        "Policy": deployed("Policy", "AWS::S3::BucketPolicy", "p", {"Bucket": "data", "PolicyDocument": {"Statement": ["old"]}}),
        "Key": deployed("Key", "AWS::KMS::Alias", "k", {"EnableKeyRotation": True}),
        "Role": deployed("Role", "AWS::IAM::Role", "r", {"Description": "reads arn:aws:s3:::data"}),
        "Queue": deployed("Queue", "AWS::SQS::Queue", "q", {}),
    })
    prior_template = {"Outputs": {"BucketName": {"Value": {"Ref": "Bucket"}}, "QueueUrl": {"Value": {"Ref": "Queue"}}}}
    plan = plan_stack("s", TEMPLATE, env=ENV, prior=prior, prior_template=prior_template)
    actions = {c.logical_id: (c.action, c.detail) for c in plan.changes}
    assert actions == {
        "Bucket": ("keep", ""),  # resolved and equal to the record: its values feed what depends on it
        "Policy": ("update", "PolicyDocument"),
        "Key": ("replace", "type AWS::KMS::Alias -> AWS::KMS::Key"),
        "Role": ("keep", ""),  # ${Bucket.Arn} resolved from the kept bucket's recorded attributes
        "Queue": ("delete", ""),
    }
    assert plan.removed == ["Queue"] and plan.changes[-1].logical_id == "Queue"
    assert plan.lines() == [
        "s: differences against the local deployment:",
        "  [~] AWS::S3::BucketPolicy Policy (PolicyDocument)",
        "  [-/+] AWS::KMS::Key Key (type AWS::KMS::Alias -> AWS::KMS::Key)",
        "  [-] AWS::SQS::Queue Queue",
        "  [+] Output KeyArn",
        "  [-] Output QueueUrl",
    ]


def test_a_property_that_depends_on_a_changing_resource_may_change():
    prior = record({
        "Bucket": deployed("Bucket", "AWS::S3::Bucket", "data", {"BucketName": "old", "Tags": ["a", "b"]}),
        "Policy": deployed("Policy", "AWS::S3::BucketPolicy", "p", {"Bucket": "old", "PolicyDocument": {"Statement": []}}),
    })
    plan = plan_stack("s", TEMPLATE, env=ENV, prior=prior)
    assert plan.change("Bucket").detail == "BucketName"
    assert (plan.change("Policy").action, plan.change("Policy").detail) == ("update", "may change: Bucket")


def test_an_unchanged_stack_says_so():
    template = {"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}}}}
    prior = record({"Key": deployed("Key", "AWS::KMS::Key", "k", {"EnableKeyRotation": True})})
    plan = plan_stack("s", template, env=ENV, prior=prior, prior_template=template)
    assert plan.lines() == ["s: no differences against the local deployment"]


def test_check_sees_each_resource_in_order_and_its_refusal_stops_the_plan():
    seen = []

    def check(lid, rtype, props):
        seen.append(lid)
        if lid == "Policy":
            raise StsmonError("no Approved model package in group g: run `stsmon train` first")

    with pytest.raises(DeployError) as caught:
        plan_stack("s", TEMPLATE, env=ENV, check=check)
    assert caught.value.message == ("stack s: resource Policy (AWS::S3::BucketPolicy): "
                                    "no Approved model package in group g: run `stsmon train` first")
    assert seen == ["Bucket", "Policy"]


@pytest.mark.parametrize("template, prior, message", [
    ({"Resources": {"A": {"Type": "T", "Properties": {"X": {"Ref": "B"}}},
                    "B": {"Type": "T", "Properties": {"X": {"Ref": "A"}}}}}, None,
     "circular dependency between resources: A -> B -> A"),
    ({"Parameters": {"P": {"Type": "String"}}, "Resources": {}}, None,
     "stack s: parameter P has no default (local deploys take none)"),
    ({"Parameters": {"P": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/my/param"}}, "Resources": {}}, None,
     "stack s: parameter P reads SSM parameter '/my/param', which has no local value"),
    ({**TEMPLATE, "Parameters": {**TEMPLATE["Parameters"], "BootstrapVersion": {"Type": "String", "Default": "3"}}}, None,
     "stack s: Rules.CheckBootstrapVersion: CDK bootstrap stack version 6 required."),
    ({"Resources": {"A": {"Type": "T", "Properties": {"X": {"Fn::ImportValue": "other:Name"}}}}}, None,
     "stack s: resource A (T):"),
    ({"Resources": {}}, record({}, region="eu-west-1"),
     "stack s is deployed in eu-west-1; it cannot move to us-east-1 (destroy it first)"),
])
def test_what_cannot_be_planned_is_refused_with_the_reason(template, prior, message):
    with pytest.raises(DeployError) as caught:
        plan_stack("s", template, env=ENV, prior=prior)
    assert message in caught.value.message
