"""Start a SageMaker pipeline execution and follow it, through a boto3-shaped SageMaker client.

One implementation for both targets: ``start_pipeline_execution``, then
``describe_pipeline_execution`` and ``list_pipeline_execution_steps`` every
``poll_seconds`` (waiting with the caller's ``sleep``: no clock is read here)
until the execution is Succeeded, Failed or Stopped. Each step status change
is reported once, in the order the steps started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import NotDeployedError, StsmonError, UsageError

TERMINAL = ("Succeeded", "Failed", "Stopped")

#: ListPipelineExecutionSteps has no step type; its Metadata key says it.
_METADATA_TYPES = {
    "ProcessingJob": "Processing",
    "TrainingJob": "Training",
    "Condition": "Condition",
    "RegisterModel": "RegisterModel",
    "Fail": "Fail",
    "Model": "Model",
    "TransformJob": "Transform",
    "TuningJob": "Tuning",
    "Lambda": "Lambda",
    "Callback": "Callback",
}


def step_type(step: dict[str, Any]) -> str | None:
    for key in (step.get("Metadata") or {}):
        if key in _METADATA_TYPES:
            return _METADATA_TYPES[key]
    return None


def execution_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _failure(exc: Exception, what: str, where: str = "", hint: str = "") -> StsmonError:
    from .clients.errors import error_code, error_message, is_not_found

    if is_not_found(exc):
        return NotDeployedError(f"{what}: {error_message(exc)}" + (f" {where}: {hint}" if hint else ""))
    if error_code(exc) == "ValidationException":
        return UsageError(f"{what}: {error_message(exc)}")
    return StsmonError(f"{what} failed: {error_message(exc)}")


def describe_pipeline(sm: Any, name: str, *, where: str, hint: str) -> dict[str, Any]:
    """``describe_pipeline`` with its definition parsed (``Definition``); NotDeployedError when it is not deployed."""
    import json

    from botocore.exceptions import BotoCoreError, ClientError

    from .clients.errors import is_not_found

    try:
        described = sm.describe_pipeline(PipelineName=name)
    except ClientError as exc:
        if is_not_found(exc):
            raise NotDeployedError(f"pipeline {name!r} is not deployed {where}: {hint}") from None
        raise _failure(exc, f"describe_pipeline({name})") from None
    except BotoCoreError as exc:
        raise StsmonError(f"describe_pipeline({name}) failed: {exc}") from None
    return {**described, "Definition": json.loads(described.get("PipelineDefinition") or "{}")}


def start(sm: Any, pipeline: str, parameters: dict[str, str], **extra: Any) -> str:
    """Start an execution; its ARN. A refusal (bad parameter, a definition that cannot run) is a UsageError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return sm.start_pipeline_execution(
            PipelineName=pipeline,
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()],
            **extra,
        )["PipelineExecutionArn"]
    except ClientError as exc:
        raise _failure(exc, f"start_pipeline_execution({pipeline})") from None
    except BotoCoreError as exc:
        raise StsmonError(f"start_pipeline_execution({pipeline}) failed: {exc}") from None


def steps(sm: Any, arn: str) -> list[dict[str, Any]]:
    """The execution's steps in the order they started, each with ``StepType`` (from its metadata)."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
    while True:
        page = sm.list_pipeline_execution_steps(**request)
        found += page.get("PipelineExecutionSteps", [])
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    return [{**s, "StepType": step_type(s)} for s in found]


def wait(
    sm: Any,
    arn: str,
    *,
    poll_seconds: float,
    sleep: Callable[[float], None],
    timeout_seconds: float,
    on_step: Callable[[dict[str, Any]], None] = lambda step: None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ask until the execution ends; (describe_pipeline_execution, steps) of its end."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen: dict[str, str | None] = {}
    waited = 0.0
    while True:
        try:
            execution = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
            found = steps(sm, arn)
        except (ClientError, BotoCoreError) as exc:
            raise StsmonError(f"reading execution {arn} failed: {exc}") from None
        for step in found:
            if seen.get(step["StepName"]) != step.get("StepStatus"):
                seen[step["StepName"]] = step.get("StepStatus")
                on_step(step)
        if execution.get("PipelineExecutionStatus") in TERMINAL:
            return execution, found
        if waited >= timeout_seconds:
            raise StsmonError(f"execution {arn} still {execution.get('PipelineExecutionStatus')} after "
                              f"{timeout_seconds:.0f} s; it goes on: follow it with `stsmon status`")
        sleep(poll_seconds)
        waited += poll_seconds
