"""Acknowledging cdk-nag findings, one by one, each with its reason.

cdk-nag 3 reads CDK's native acknowledgements (``Validations.of(...)``). The
constructs acknowledge the findings they knowingly cause, next to the code
that causes them; tests/stacks/test_security_gates.py runs the AwsSolutions
and NIST 800-53 rev5 packs and fails on anything unacknowledged.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
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


def acknowledge_custom_resource_lambda(function: IConstruct) -> None:
    """The NIST Lambda findings every deploy-time handler shares."""
    acknowledge(function, f"{NIST}-LambdaInsideVPC", LAMBDA_VPC)
    acknowledge(function, f"{NIST}-LambdaDLQ", LAMBDA_DLQ)
    acknowledge(function, f"{NIST}-LambdaConcurrency", LAMBDA_CONCURRENCY)
