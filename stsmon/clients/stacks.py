"""The deployed stacks' outputs (CloudFormation ``describe_stacks``): where commands learn names and URIs."""

from __future__ import annotations

from typing import Any

from ..errors import NotDeployedError, StsmonError
from .errors import error_message, is_not_found

STACK_KINDS = ("foundation", "training", "serving", "monitoring")


def describe_stack(clients: Any, name: str) -> dict[str, Any] | None:
    """The stack as ``describe_stacks`` shows it, or None when it is not deployed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return clients.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise StsmonError(f"describe_stacks({name}) failed: {error_message(exc)}") from None
    except BotoCoreError as exc:
        raise StsmonError(f"describe_stacks({name}) failed: {exc}") from None


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def deployed_outputs(clients: Any, kinds: tuple[str, ...] = STACK_KINDS) -> dict[str, str]:
    """The outputs of the app's deployed stacks among ``kinds``, merged (later stacks win on a clash)."""
    merged: dict[str, str] = {}
    for kind in kinds:
        stack = describe_stack(clients, clients.config.stack_name(kind))
        if stack is not None:
            merged.update(outputs_of(stack))
    return merged


def require_outputs(clients: Any, *keys: str, kinds: tuple[str, ...] = STACK_KINDS) -> dict[str, str]:
    """The merged outputs, with every one of ``keys``; NotDeployedError naming the missing ones otherwise."""
    outputs = deployed_outputs(clients, kinds)
    missing = [k for k in keys if not outputs.get(k)]
    if missing:
        stacks = ", ".join(clients.config.stack_name(k) for k in kinds)
        raise NotDeployedError(
            f"the stack outputs {', '.join(missing)} are not deployed {clients.runtime.where()} (stacks {stacks}): "
            f"{clients.deploy_hint()}")
    return outputs
