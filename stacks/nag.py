"""Acknowledging scanner findings, one by one, each with its reason.

cdk-nag 3 reads CDK's native acknowledgements (``Validations.of(...)``);
checkov reads ``Metadata.checkov.skip`` entries (id + comment) on the
resource. The constructs acknowledge the findings they knowingly cause, next
to the code that causes them; every synth runs the AwsSolutions and NIST
800-53 rev5 packs (app.py), and tests/stacks/test_security_gates.py runs
cfn-lint and checkov on the templates.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct

AWS = "AwsSolutions"
NIST = "NIST.800.53.R5"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (``AwsSolutions-IAM5[Resource::...]``, ``NIST.800.53.R5-...``) on ``scope``."""
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule}: give a real reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


# Reasons shared by every custom-resource Lambda of this app.
LAMBDA_VPC = (
    "Custom-resource handler that only calls AWS APIs during deployment; the project has no VPC "
    "and a VPC would add NAT cost without reducing exposure."
)
LAMBDA_DLQ = (
    "Invoked synchronously by CloudFormation, which records and reports failures; a DLQ only "
    "applies to asynchronous invocations."
)
LAMBDA_CONCURRENCY = (
    "Runs once per deployment; reserving concurrency fails in new accounts whose concurrency "
    "limit is 10 (the unreserved minimum)."
)
INLINE_POLICY_CDK = (
    "Inline default policy created by a CDK construct's grant methods; its statements are "
    "least-privilege grants on this app's own resources."
)


def skip_checkov(resource: CfnResource, check_id: str, comment: str) -> None:
    """Add a commented checkov skip to ``resource``'s template metadata."""
    if len(comment) < 20:
        raise ValueError(f"skipping {check_id}: give a real reason, not {comment!r}")
    current = resource.get_metadata("checkov") or {"skip": []}
    skips = [s for s in current["skip"] if s["id"] != check_id] + [{"id": check_id, "comment": comment}]
    resource.add_metadata("checkov", {"skip": skips})


def skip_checkov_custom_resource_lambda(function: CfnResource) -> None:
    """checkov's Lambda checks that deploy-time handlers knowingly fail (same reasons as for cdk-nag)."""
    skip_checkov(function, "CKV_AWS_117", LAMBDA_VPC)
    skip_checkov(function, "CKV_AWS_116", LAMBDA_DLQ)
    skip_checkov(function, "CKV_AWS_115", LAMBDA_CONCURRENCY)


def acknowledge_custom_resource_lambda(function: IConstruct) -> None:
    """The NIST Lambda findings (and checkov's twins) every deploy-time handler shares."""
    acknowledge(function, f"{NIST}-LambdaInsideVPC", LAMBDA_VPC)
    acknowledge(function, f"{NIST}-LambdaDLQ", LAMBDA_DLQ)
    acknowledge(function, f"{NIST}-LambdaConcurrency", LAMBDA_CONCURRENCY)
    skip_checkov_custom_resource_lambda(function.node.default_child)
