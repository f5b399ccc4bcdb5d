"""Tear down what the flow left behind (the original ``cleanup.py``).

On either target, through the clients: stop running executions and, if
asked, delete the registered model packages — what ``cdk destroy`` cannot
remove by itself in a prod profile (in the dev profile the stacks' cleanup
custom resource does both during ``cdk destroy``). Locally the runtime then
stops the endpoint servers and the scheduler and removes the state folder
(:func:`stop_local`, :func:`remove_local_state`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


from .errors import StsmonError, UsageError
from .state import StateDir

#: Entries a state folder may hold; cleanup refuses to delete a folder with anything else in it.
STATE_ENTRIES = {
    "s3", "deployments", "registry.sqlite", "registry.sqlite-wal", "registry.sqlite-shm", "registry.sqlite-journal",
    "executions", "endpoints", "scheduler", "metrics", "runs", "pipelines", "alarms", "dashboards", "reports",
    "schedules", "assets", "locks", "deploy.lock", "demo", "inputs", "events", "models",
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


def stop_executions_and_delete_packages(clients: Any, echo: Callable[[str], None], *,
                                        delete_packages: bool) -> dict[str, list[str]]:
    """Stop running executions of the deployed pipelines and, if asked, delete the model packages in
    the group (what a prod ``cdk destroy`` retains) — through the clients, on either target."""
    from botocore.exceptions import ClientError

    from .clients.errors import error_message, is_not_found
    from .clients.stacks import deployed_outputs

    cfg = clients.config
    sagemaker = clients.sagemaker
    outputs = deployed_outputs(clients, ("foundation", "training", "monitoring"))
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
            if is_not_found(exc):
                continue
            raise StsmonError(f"cannot list executions of pipeline {name}: {error_message(exc)}") from None
    if delete_packages:
        group = outputs.get("ModelPackageGroupName") or cfg.model_package_group_name
        # Every page first, then the deletions: deleting while paging shifts the
        # later pages, and the listing would skip packages.
        try:
            arns = [summary["ModelPackageArn"]
                    for page in sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
                    for summary in page.get("ModelPackageSummaryList", [])]
        except ClientError as exc:
            if not is_not_found(exc):
                raise StsmonError(f"cannot list the model packages of {group}: {error_message(exc)}") from None
            arns = []
        for arn in arns:
            try:
                sagemaker.delete_model_package(ModelPackageName=arn)
            except ClientError as exc:
                if not is_not_found(exc):
                    raise StsmonError(f"cannot delete model package {arn}: {error_message(exc)} "
                                      f"({len(done['packages'])} of {len(arns)} deleted; run the cleanup again)") from None
                continue  # deleted meanwhile
            echo(f"deleted {arn}")
            done["packages"].append(arn)
    return done
