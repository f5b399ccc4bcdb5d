"""Model registry events -> the alarm topic: a person hears of a version waiting for approval.

SageMaker sends EventBridge a ``SageMaker Model Package State Change`` event
(source ``aws.sagemaker``) when a package is registered and when its approval
status changes; the event's ``detail`` is the package as DescribeModelPackage
shows it (AWS docs, "Events that Amazon SageMaker sends to Amazon
EventBridge", Model package state change). :class:`ModelPackageEvents` is one
rule on the default bus for this app's group and the statuses in
``names.NOTIFIED_APPROVAL_STATUSES`` (a new version pending manual approval, a
version approved), with the alarm topic as its target.

Permissions, both scoped to this rule and this topic: the topic's policy
replaces SNS's default one (``enforce_ssl``), so EventBridge may publish only
with ``aws:SourceArn`` = this rule and ``aws:SourceAccount`` = this account
(EventBridge User Guide, "Amazon SNS permissions"). The topic is encrypted
with the app's key and SNS uses it on the publisher's behalf, so the key policy
lets ``events.amazonaws.com`` generate and decrypt data keys, but only through
SNS (``kms:ViaService``) for this topic (``kms:EncryptionContext:aws:sns:topicArn``,
the context SNS encrypts a topic's messages with): EventBridge's KMS requests
carry no ``aws:SourceArn``/``aws:SourceAccount`` (see
``FoundationStack.allow_alarms_to_notify``). The CDK's ``targets.SnsTopic``
would add both grants with no condition at all, so the target is bound here
without grants. tests/stacks/test_authorization.py evaluates both on the
exact ARNs and context keys AWS evaluates.

Locally the deployer records the rule and the local registry emits the same
event; the local event bus matches it with this rule's pattern and records the
delivery to the topic (``stsmon/localcloud/events.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jsii
from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from stscontracts import names


@jsii.implements(events.IRuleTarget)
class _TopicWithoutGrants:
    """An SNS topic as a rule target, binding no permissions (they are added, with conditions, by the construct)."""

    def __init__(self, topic: sns.ITopic) -> None:
        self.topic = topic

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic.topic_arn)


class ModelPackageEvents(Construct):
    """The rule on this app's model package state changes, notifying ``topic`` (named ``topic_name``).

    Attributes:
        rule: the EventBridge rule (named ``{prefix}-model-package-events``).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        model_package_group_name: str,
        topic: sns.Topic,
        topic_name: str,
        key: kms.IKey,
        statuses: Sequence[str] = names.NOTIFIED_APPROVAL_STATUSES,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=f"{prefix}-model-package-events",
            description=f"Model packages of {model_package_group_name}: {', '.join(statuses)} -> the alarm topic",
            event_pattern=events.EventPattern(
                source=[names.EVENT_SOURCE_SAGEMAKER],
                detail_type=[names.MODEL_PACKAGE_STATE_CHANGE],
                detail={"ModelPackageGroupName": [model_package_group_name], "ModelApprovalStatus": list(statuses)},
            ),
        )
        self.rule.add_target(_TopicWithoutGrants(topic))
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ModelPackageEventsPublish",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": self.rule.rule_arn},
                },
            )
        )
        # The topic's ARN from its literal name: a Ref would make the key depend on the topic
        # that depends on the key (a cycle).
        topic_arn = stack.format_arn(service="sns", resource=topic_name, arn_format=ArnFormat.NO_RESOURCE_NAME)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ModelPackageEventsToEncryptedTopic",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"sns.{stack.region}.amazonaws.com",
                        "kms:EncryptionContext:aws:sns:topicArn": topic_arn,
                    },
                },
            )
        )
