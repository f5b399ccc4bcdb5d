"""Tear down what the flow left behind (the original ``cleanup.py``).

Locally: stop the endpoint servers, the scheduler and running pipeline
executions, then remove the state folder. On AWS: what ``cdk destroy``
cannot remove by itself in a prod profile — model packages that pipeline runs
registered, and running executions (in the dev profile the stacks' cleanup
custom resource does both during ``cdk destroy``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stscontracts.config import Config

from .errors import StsmonError, UsageError
from .state import StateDir

#: Entries a state folder may hold; cleanup refuses to delete a folder with anything else in it.
STATE_ENTRIES = {
    "s3", "deployments", "registry.sqlite", "registry.sqlite-wal", "registry.sqlite-shm", "registry.sqlite-journal",
    "executions", "endpoints", "scheduler", "metrics", "runs", "pipelines", "alarms", "dashboards", "reports",
    "schedules", "assets", "locks", "deploy.lock", "demo",
}


def _looks_like_state(root: Path) -> list[str]:
    """Names inside ``root`` that a state folder never holds."""
    return sorted(p.name for p in root.iterdir() if p.name not in STATE_ENTRIES and not p.name.startswith("."))


def stop_local(state: StateDir, echo: Callable[[str], None]) -> dict[str, list[str]]:
    """Stop every local process that belongs to ``state``; returns what was stopped."""
    from .endpoint.process import list_records, stop_endpoint
    from .localcloud.executions import stop_running_executions
    from .localcloud.pipelines import pipelines_dir
    from .monitoring import scheduler

    stopped: dict[str, list[str]] = {"endpoints": [], "scheduler": [], "executions": []}
    for record in list_records(state):
        name = str(record["endpoint_name"])
        if stop_endpoint(state, name):
            echo(f"stopped endpoint {name}")
            stopped["endpoints"].append(name)
    if scheduler.stop(state):
        echo("stopped the local scheduler")
        stopped["scheduler"].append("scheduler")
    folder = pipelines_dir(state)
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    if state.executions.is_dir():
        names = sorted(set(names) | {p.name for p in state.executions.iterdir() if p.is_dir()})
    for name in names:
        for execution_id in stop_running_executions(state, name):
            echo(f"stopped execution {execution_id} of {name}")
            stopped["executions"].append(f"{name}/{execution_id}")
    return stopped


def remove_local_state(state: StateDir, echo: Callable[[str], None]) -> bool:
    """Delete the state folder (after :func:`stop_local`). False when there was none."""
    root = state.root
    if not root.exists():
        return False
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; not removing it")
    strangers = _looks_like_state(root)
    if strangers:
        raise UsageError(
            f"{root} does not look like a stsmon state folder (it holds {', '.join(strangers[:5])}); "
            "not removing it — check --state-dir / STSMON_HOME")
    shutil.rmtree(root)
    echo(f"removed {root}")
    return True


def aws_cleanup(cfg: Config, *, cfn: Any, sagemaker: Any, echo: Callable[[str], None],
                delete_packages: bool) -> dict[str, list[str]]:
    """Stop running executions of the deployed pipelines and, if asked, delete
    the model packages in the group (what a prod ``cdk destroy`` retains)."""
    from botocore.exceptions import ClientError

    from .aws import stack_outputs

    outputs: dict[str, str] = {}
    for kind in ("foundation", "training", "monitoring"):
        try:
            outputs.update(stack_outputs(cfn, cfg.stack_name(kind)))
        except StsmonError:
            continue
    pipelines = [outputs.get("TrainingPipelineName") or cfg.pipeline_name]
    if outputs.get("MonitoringPipelineName"):
        pipelines.append(outputs["MonitoringPipelineName"])
    done: dict[str, list[str]] = {"executions": [], "packages": []}
    for name in pipelines:
        try:
            pages = sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=name)
            for page in pages:
                for summary in page.get("PipelineExecutionSummaries", []):
                    if summary.get("PipelineExecutionStatus") == "Executing":
                        sagemaker.stop_pipeline_execution(PipelineExecutionArn=summary["PipelineExecutionArn"])
                        echo(f"stopping {summary['PipelineExecutionArn']}")
                        done["executions"].append(summary["PipelineExecutionArn"])
        except ClientError as exc:
            if "does not exist" in str(exc) or "ResourceNotFound" in str(exc):
                continue
            raise StsmonError(f"cannot list executions of pipeline {name}: {exc}") from None
    if delete_packages:
        group = outputs.get("ModelPackageGroupName") or cfg.model_package_group_name
        # Every page first, then the deletions: deleting while paging shifts the
        # later pages, and the listing would skip packages.
        try:
            arns = [summary["ModelPackageArn"]
                    for page in sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
                    for summary in page.get("ModelPackageSummaryList", [])]
        except ClientError as exc:
            if "does not exist" not in str(exc):
                raise StsmonError(f"cannot list the model packages of {group}: {exc}") from None
            arns = []
        for arn in arns:
            try:
                sagemaker.delete_model_package(ModelPackageName=arn)
            except ClientError as exc:
                if "does not exist" not in str(exc) and "ResourceNotFound" not in str(exc):
                    raise StsmonError(f"cannot delete model package {arn}: {exc} "
                                      f"({len(done['packages'])} of {len(arns)} deleted; run the cleanup again)") from None
                continue  # deleted meanwhile
            echo(f"deleted {arn}")
            done["packages"].append(arn)
    return done
