"""Custom::StsPipelineCleanup - when its stack is deleted (dev profile), remove
what pipeline runs created and CloudFormation does not know about.

Properties:
    PipelineNames           pipelines whose running executions are stopped.
    ModelPackageGroupName   optional: every model package in it is deleted,
                            so the group itself can be deleted afterwards.

Lifecycle (the protocol is in ``cfn_response``):

- Create answers ``cleanup-{pipeline names}``; Update changes nothing and
  answers the id it was sent, so a changed property (a renamed pipeline) is
  never a replacement and never triggers a Delete.
- Delete wipes only when the *stack* is being deleted: it asks CloudFormation
  for the stack's status and acts only on ``DELETE_IN_PROGRESS``. Every other
  Delete — the resource removed from the template (e.g. the switch to the
  prod profile), a replacement's clean-up, the rollback of a failed Create —
  arrives while the stack is ``UPDATE_COMPLETE_CLEANUP_IN_PROGRESS``,
  ``UPDATE_ROLLBACK_…`` or ``ROLLBACK_IN_PROGRESS`` and wipes nothing.
- What it wipes comes from the event's ``ResourceProperties``: the
  resource's own, as last deployed.
- It stops the running executions, waits for them to leave Executing/Stopping,
  lists *all* the group's packages, then deletes them. Gone already is fine,
  so a repeated Delete succeeds. When the Lambda's time runs short it answers
  FAILED with what was done and what is left; deleting the stack again
  resumes with what is left.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError

import cfn_response
from cfn_response import Request, UserFacingError

logger = logging.getLogger()

RUNNING = {"Executing", "Stopping"}
POLL_SECONDS = 10
#: Milliseconds kept back for one more API call and the answer.
RESERVE_MS = 20_000
#: The one stack status in which a Delete means "the stack is going away".
STACK_DELETING = "DELETE_IN_PROGRESS"


def handler(event: dict, context: Any) -> None:
    cfn_response.run(event, context, handle_request)


def handle_request(request: Request, *, sagemaker: Any = None, cloudformation: Any = None, sleep: Any = time.sleep) -> tuple[str, dict]:
    return handle(
        request.request_type, request.properties, request.old_properties,
        physical_id=request.physical_id, stack_id=request.stack_id, sagemaker=sagemaker, cloudformation=cloudformation,
        time_left_ms=request.time_left_ms, progress=request.progress, sleep=sleep,
    )


def handle(
    request_type: str,
    props: dict,
    old_props: dict,
    *,
    physical_id: str | None = None,
    stack_id: str = "",
    sagemaker: Any = None,
    cloudformation: Any = None,
    time_left_ms: Any = None,
    progress: Any = None,
    sleep: Any = time.sleep,
) -> tuple[str, dict]:
    if request_type == "Create":
        return "cleanup-" + "-".join(props.get("PipelineNames", []))[:200], {}
    if request_type == "Update":
        return physical_id or "", {}
    cloudformation = cloudformation or boto3.client("cloudformation")
    status = stack_status(cloudformation, stack_id)
    if status != STACK_DELETING:
        logger.info("stack %s is %s, not being deleted: nothing is stopped or deleted", stack_id, status)
        return physical_id or "", {"Skipped": status}
    sagemaker = sagemaker or boto3.client("sagemaker")
    time_left_ms = time_left_ms or (lambda: float("inf"))
    progress = progress or (lambda text: None)
    stopping: list[str] = []
    for name in props.get("PipelineNames", []):
        stopping += stop_executions(sagemaker, name)
    progress(f"asked {len(stopping)} execution(s) to stop")
    still = wait_stopped(sagemaker, stopping, time_left_ms, sleep)
    if still:
        raise UserFacingError(
            f"{len(still)} pipeline execution(s) still stopping ({', '.join(still[:3])}{' …' if len(still) > 3 else ''}); "
            "no model package deleted yet. Delete the stack again in a few minutes: the cleanup resumes."
        )
    deleted = 0
    group = props.get("ModelPackageGroupName")
    if group:
        deleted = delete_packages(sagemaker, group, time_left_ms, progress)
    return physical_id or "", {"StoppedExecutions": str(len(stopping)), "DeletedModelPackages": str(deleted)}


def stack_status(cloudformation: Any, stack_id: str) -> str:
    """The stack's status (by its id, which still answers while and after it is deleted)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except ClientError as exc:
        # Never wipe on doubt: a FAILED Delete is retried by deleting again.
        raise UserFacingError(f"cannot tell whether stack {stack_id} is being deleted ({exc}); nothing was deleted") from None
    return stacks[0]["StackStatus"] if stacks else "UNKNOWN"


def _gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    message = str(error.get("Message", "")).lower()
    return error.get("Code") == "ResourceNotFound" or (
        error.get("Code") == "ValidationException" and ("does not exist" in message or "not found" in message)
    )


def stop_executions(sagemaker: Any, pipeline: str) -> list[str]:
    """Ask every Executing execution of ``pipeline`` to stop; returns those not finished (Executing or Stopping)."""
    arns = []
    token = None
    while True:
        kwargs = {"PipelineName": pipeline, "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        try:
            page = sagemaker.list_pipeline_executions(**kwargs)
        except ClientError as exc:
            if _gone(exc) or exc.response["Error"]["Code"] == "ValidationException":
                return arns  # the pipeline is already gone
            raise
        for summary in page.get("PipelineExecutionSummaries", []):
            arn, status = summary["PipelineExecutionArn"], summary.get("PipelineExecutionStatus")
            if status == "Executing":
                try:
                    sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn)
                except ClientError:
                    # Finished between the listing and the stop? Then there is nothing to stop.
                    if sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] in RUNNING:
                        raise
                    continue
                arns.append(arn)
            elif status == "Stopping":
                arns.append(arn)
        token = page.get("NextToken")
        if not token:
            return arns


def wait_stopped(sagemaker: Any, arns: list[str], time_left_ms: Any, sleep: Any) -> list[str]:
    """Poll until none of ``arns`` is running or time runs short; returns those still running."""
    pending = list(arns)
    while pending:
        pending = [
            arn for arn in pending
            if sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] in RUNNING
        ]
        if not pending or time_left_ms() < RESERVE_MS + POLL_SECONDS * 1000:
            return pending
        sleep(POLL_SECONDS)
    return pending


def list_packages(sagemaker: Any, group: str) -> list[str]:
    """Every package ARN of ``group``, all pages listed before anything is deleted
    (deleting while paging would shift the pages and skip packages)."""
    arns: list[str] = []
    token = None
    while True:
        kwargs = {"ModelPackageGroupName": group, "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        try:
            page = sagemaker.list_model_packages(**kwargs)
        except ClientError as exc:
            if _gone(exc) or exc.response["Error"]["Code"] == "ValidationException":
                return arns  # no such group: nothing to delete
            raise
        arns += [summary["ModelPackageArn"] for summary in page.get("ModelPackageSummaryList", [])]
        token = page.get("NextToken")
        if not token:
            return arns


def delete_packages(sagemaker: Any, group: str, time_left_ms: Any = None, progress: Any = None) -> int:
    """Delete every package of ``group``; returns how many were deleted (gone already counts).

    Stops before the Lambda's time runs out and says what is left.
    """
    time_left_ms = time_left_ms or (lambda: float("inf"))
    progress = progress or (lambda text: None)
    arns = list_packages(sagemaker, group)
    for done, arn in enumerate(arns):
        if time_left_ms() < RESERVE_MS:
            raise UserFacingError(
                f"deleted {done} of {len(arns)} model package(s) of group {group} before the Lambda's time ran out; "
                f"{len(arns) - done} remain. Delete the stack again: the cleanup resumes with what is left."
            )
        try:
            sagemaker.delete_model_package(ModelPackageName=arn)
        except ClientError as exc:
            if not _gone(exc):
                raise
        progress(f"deleted {done + 1} of {len(arns)} model package(s) of group {group}")
    return len(arns)
