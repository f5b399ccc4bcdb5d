"""Custom::StsPipelineCleanup - on stack deletion (dev profile), remove what
pipeline runs created and CloudFormation does not know about.

Properties:
    PipelineNames           pipelines whose running executions are stopped.
    ModelPackageGroupName   optional: every model package in it is deleted,
                            so the group itself can be deleted afterwards.

Create and Update do nothing. Delete stops executions (waiting for them to
leave Executing/Stopping), then deletes the packages.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.exceptions import ClientError

import cfn_response

RUNNING = {"Executing", "Stopping"}
POLL_SECONDS = 10


def handler(event: dict, context: Any) -> None:
    cfn_response.run(event, context, lambda t, p, o: handle(t, p, o, remaining_ms=context.get_remaining_time_in_millis))


def handle(request_type: str, props: dict, old_props: dict, *, sagemaker: Any = None, remaining_ms: Any = None, sleep: Any = time.sleep) -> tuple[str, dict]:
    physical_id = "cleanup-" + "-".join(props.get("PipelineNames", []))[:200]
    if request_type != "Delete":
        return physical_id, {}
    sagemaker = sagemaker or boto3.client("sagemaker")
    remaining_ms = remaining_ms or (lambda: 600_000)
    stopped = []
    for name in props.get("PipelineNames", []):
        stopped += stop_executions(sagemaker, name)
    wait_stopped(sagemaker, stopped, remaining_ms, sleep)
    deleted = 0
    group = props.get("ModelPackageGroupName")
    if group:
        deleted = delete_packages(sagemaker, group)
    return physical_id, {"StoppedExecutions": str(len(stopped)), "DeletedModelPackages": str(deleted)}


def stop_executions(sagemaker: Any, pipeline: str) -> list[str]:
    arns = []
    token = None
    while True:
        kwargs = {"PipelineName": pipeline, "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        try:
            page = sagemaker.list_pipeline_executions(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
                return arns  # the pipeline is already gone
            raise
        for summary in page.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionStatus") == "Executing":
                sagemaker.stop_pipeline_execution(PipelineExecutionArn=summary["PipelineExecutionArn"])
                arns.append(summary["PipelineExecutionArn"])
            elif summary.get("PipelineExecutionStatus") == "Stopping":
                arns.append(summary["PipelineExecutionArn"])
        token = page.get("NextToken")
        if not token:
            return arns


def wait_stopped(sagemaker: Any, arns: list[str], remaining_ms: Any, sleep: Any) -> None:
    pending = list(arns)
    while pending and remaining_ms() > 60_000:
        pending = [
            arn for arn in pending
            if sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] in RUNNING
        ]
        if pending:
            sleep(POLL_SECONDS)


def delete_packages(sagemaker: Any, group: str) -> int:
    """Delete every package of ``group``; returns how many.

    Lists the first page again after each round of deletions, since deleting
    while paginating would skip packages.
    """
    deleted = 0
    while True:
        try:
            page = sagemaker.list_model_packages(ModelPackageGroupName=group, MaxResults=100)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
                return deleted
            raise
        summaries = page.get("ModelPackageSummaryList", [])
        if not summaries:
            return deleted
        for summary in summaries:
            sagemaker.delete_model_package(ModelPackageName=summary["ModelPackageArn"])
            deleted += 1
