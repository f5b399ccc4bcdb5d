"""boto3 helpers for ``--target aws``: the same operations as the local runtime,
against the deployed AWS resources (your AWS credentials and region).

Clients are created only when a command runs with ``--target aws``; tests use
botocore's Stubber. Nothing here runs at import time.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import NotDeployedError, StsmonError


@lru_cache(maxsize=8)
def _profile_session(profile: str) -> Any:
    import boto3

    return boto3.Session(profile_name=profile)


def client(service: str, region: str | None = None, *, profile: str | None = None) -> Any:
    """A boto3 client in ``region`` (the CLI passes the region it resolved, see
    ``stsmon/aws/environment.py``) with ``profile`` (None: botocore's default
    credential chain); a missing profile, credential or region becomes a clear error."""
    import boto3

    try:
        factory = _profile_session(profile).client if profile else boto3.client
        return factory(service, region_name=region)
    except Exception as exc:  # botocore raises several unrelated types here
        raise StsmonError(f"cannot create an AWS {service} client: {exc}") from None


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    """The outputs of a deployed CloudFormation stack (OutputKey -> OutputValue)."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise NotDeployedError(f"stack {stack_name} is not deployed on AWS: run `cdk deploy {stack_name}`") from None
        raise StsmonError(f"describe_stacks({stack_name}) failed: {exc}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
