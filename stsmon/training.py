"""``stsmon train``'s library side: run the training pipeline, summarize, record — one
implementation for both targets, through the boto3-shaped clients (:mod:`stsmon.clients`).

The run record (``runs/train-{execution id}.json`` in the state folder, and a
copy named ``trainmodel_out.json`` — the original project's hand-off file — in
the current folder) holds::

    {"target": "local" | "aws", "pipeline_name", "pipeline_arn",
     "pipeline_execution_arn", "execution_id", "status", "failure_reason",
     "failed_step", "started", "ended", "duration_seconds",
     "parameters": {name: value},
     "steps": [{"name", "type", "status", "started", "ended", "duration_seconds", "failure_reason"}],
     "metrics": {"accuracy": 0.79, ...},            # from the evaluation property file
     "metrics_uri": "s3://.../evaluation.json",
     "model_package_arn", "model_package_group_name", "model_package_version",
     "model_approval_status", "model_data_url",
     "baseline": {"statistics": "s3://...", "constraints": "s3://..."}}

(fields that do not apply are null; ``model_*`` are null when no package was
registered, e.g. when the quality gate failed).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from stscontracts import names

from .clients.errors import error_code, error_message
from .errors import NotDeployedError, StsmonError, UsageError
from .inputs import local_input_files
from .state import StateDir

#: The pipeline parameter that takes the training data location (pipeline_code/training.py).
INPUT_DATA_PARAMETER = "InputDataUri"
RECORD_FILENAME = "trainmodel_out.json"


class TrainingFailed(StsmonError):
    """The execution ended Failed or Stopped (the record is written first)."""


#: Settings that were pipeline parameters once and are fixed at synth now -> the configuration key.
FIXED_AT_SYNTH = {"ProblemType": "PROBLEM_TYPE"}


def parse_parameters(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs -> overrides, the same for both targets (checked before anything runs)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--parameter expects KEY=VALUE, got {pair!r}")
        key = key.strip()
        if key in FIXED_AT_SYNTH:
            setting = FIXED_AT_SYNTH[key]
            raise UsageError(
                f"--parameter {key}={value}: {key} is not a run-time parameter. It is fixed when the pipeline is "
                f"deployed, because the quality gate's metric and threshold and what monitoring alarms on follow "
                f"from it; deploy with -c {setting}={value or '...'} (stsmon synth/deploy, or cdk deploy) instead"
            )
        out[key] = value
    return out


def metrics_of(report: dict[str, Any]) -> dict[str, float]:
    """``{"accuracy": 0.79, ...}`` from an evaluation.json in model-metrics form."""
    metrics: dict[str, float] = {}
    for key, block in report.items():
        if key.endswith("_metrics") and isinstance(block, dict):
            for name, value in block.items():
                if isinstance(value, dict) and isinstance(value.get("value"), (int, float)):
                    metrics[name] = value["value"]
    return metrics


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)
    except ValueError:
        return None


def step_summaries(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.get("StepName"),
            "type": s.get("StepType"),
            "status": s.get("StepStatus"),
            "started": _iso(s.get("StartTime")),
            "ended": _iso(s.get("EndTime")),
            "duration_seconds": _duration(_iso(s.get("StartTime")), _iso(s.get("EndTime"))),
            "failure_reason": s.get("FailureReason"),
        }
        for s in steps
    ]


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def build_record(
    *,
    target: str,
    execution: dict[str, Any],
    steps: list[dict[str, Any]],
    metrics: dict[str, float],
    metrics_uri: str | None,
    package: dict[str, Any] | None,
) -> dict[str, Any]:
    failed = next((s for s in steps if s.get("StepStatus") == "Failed"), None)
    started, ended = _iso(execution.get("CreationTime")), _iso(execution.get("EndTime") or execution.get("LastModifiedTime"))
    containers = ((package or {}).get("InferenceSpecification") or {}).get("Containers") or [{}]
    drift = ((package or {}).get("DriftCheckBaselines") or {}).get("ModelQuality") or {}
    return {
        "target": target,
        "pipeline_name": execution.get("PipelineName") or execution.get("PipelineArn", "").rsplit("/", 1)[-1],
        "pipeline_arn": execution.get("PipelineArn"),
        "pipeline_execution_arn": execution.get("PipelineExecutionArn"),
        "execution_id": execution.get("PipelineExecutionArn", "").rsplit("/", 1)[-1],
        "status": execution.get("PipelineExecutionStatus"),
        "failure_reason": execution.get("FailureReason"),
        "failed_step": failed.get("StepName") if failed else None,
        "started": started,
        "ended": ended,
        "duration_seconds": _duration(started, ended),
        "parameters": {p["Name"]: p["Value"] for p in execution.get("Parameters") or execution.get("PipelineParameters") or []},
        "steps": step_summaries(steps),
        "metrics": metrics,
        "metrics_uri": metrics_uri,
        "model_package_arn": (package or {}).get("ModelPackageArn"),
        "model_package_group_name": (package or {}).get("ModelPackageGroupName"),
        "model_package_version": (package or {}).get("ModelPackageVersion"),
        "model_approval_status": (package or {}).get("ModelApprovalStatus"),
        "model_data_url": containers[0].get("ModelDataUrl"),
        "baseline": {
            "statistics": (drift.get("Statistics") or {}).get("S3Uri"),
            "constraints": (drift.get("Constraints") or {}).get("S3Uri"),
        }
        if drift
        else None,
    }


def write_record(record: dict[str, Any], state: StateDir, out_file: Path | None) -> list[Path]:
    """Write the run record to ``runs/train-{id}.json`` and ``out_file`` (atomically)."""
    paths = [state.runs / f"train-{record['execution_id']}.json"]
    if out_file is not None:
        paths.append(out_file)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    return paths


# -- the run (either target) ------------------------------------------------------------


def _s3_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def has_objects(s3: Any, uri: str) -> bool:
    """Whether anything is stored under the ``s3://`` URI (an object, or a prefix with objects)."""
    bucket, key = _s3_parts(uri)
    try:
        return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"))
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            return False
        raise StsmonError(f"listing {uri} failed: {error_message(exc)}") from None


def upload_input_data(s3: Any, source: str, bucket: str, prefix: str) -> str:
    """The S3 URI to train on: ``s3://`` as given (something must be there); a local path or
    ``file://`` URI is uploaded to ``s3://{bucket}/{prefix}/input/``, replacing what was there."""
    if source.startswith("s3://"):
        if not has_objects(s3, source):
            raise UsageError(f"--input-data {source}: no objects there")
        return source
    files = local_input_files(source)
    key_prefix = names.input_prefix(prefix)
    keys = {key_prefix + rel: f for rel, f in files}
    try:
        listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
                  for o in page.get("Contents", [])]
        stale = [{"Key": key} for key in listed if key not in keys]
        for start in range(0, len(stale), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[start:start + 1000], "Quiet": True})
        for key, f in keys.items():
            s3.put_object(Bucket=bucket, Key=key, Body=f.read_bytes())
    except ClientError as exc:
        raise StsmonError(f"uploading the training data to s3://{bucket}/{key_prefix} failed: {error_message(exc)}") from None
    return f"s3://{bucket}/{key_prefix}"


def property_file_metrics(clients: Any, definition: dict[str, Any], steps: list[dict[str, Any]]
                          ) -> tuple[dict[str, float], str | None]:
    """Metrics from the first property file of a succeeded processing step (the evaluation report):
    its job's output (``describe_processing_job``), the file read from S3."""
    files: dict[str, list[dict[str, Any]]] = {}

    def walk(raw_steps: list[dict[str, Any]]) -> None:
        for raw in raw_steps:
            if raw.get("PropertyFiles"):
                files[raw["Name"]] = raw["PropertyFiles"]
            args = raw.get("Arguments") or {}
            walk(args.get("IfSteps") or [])
            walk(args.get("ElseSteps") or [])

    walk(definition.get("Steps") or [])
    for step in steps:
        job_arn = (step.get("Metadata") or {}).get("ProcessingJob", {}).get("Arn")
        if step.get("StepStatus") != "Succeeded" or not job_arn or step["StepName"] not in files:
            continue
        job = clients.sagemaker.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
        outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in (job.get("ProcessingOutputConfig") or {}).get("Outputs", [])}
        for pf in files[step["StepName"]]:
            if pf["OutputName"] not in outputs:
                continue
            uri = outputs[pf["OutputName"]].rstrip("/") + "/" + pf["FilePath"]
            bucket, key = _s3_parts(uri)
            try:
                body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                metrics = metrics_of(json.loads(body))
            except (ClientError, ValueError):
                continue
            if metrics:
                return metrics, uri
    return {}, None


def run_training(
    clients: Any,
    *,
    pipeline_name: str,
    parameters: dict[str, str],
    input_data: str | None,
    bucket: str | None,
    prefix: str,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Start the training pipeline, wait for it (asking every ``clients.timing.execution_poll``
    seconds, waiting with ``sleep``), and return the run record (not yet written).

    Parameter names and values are checked against the deployed definition, and the
    training data's location, before anything is uploaded or started.
    """
    from . import executions
    from .localcloud.executor import resolve_parameters

    on_event = on_event or (lambda kind, data: None)
    sm = clients.sagemaker
    pipeline = executions.describe_pipeline(sm, pipeline_name, where=clients.runtime.where(), hint=clients.deploy_hint())
    definition = pipeline["Definition"]
    resolve_parameters(definition, parameters)  # bad names/values: refused before anything is uploaded
    declared = {p["Name"]: p for p in definition.get("Parameters") or []}
    if input_data is not None:
        if INPUT_DATA_PARAMETER not in declared:
            raise UsageError(f"pipeline {pipeline_name} has no {INPUT_DATA_PARAMETER} parameter; use --parameter")
        if bucket is None:
            raise NotDeployedError(f"no ArtifactBucketName output is deployed {clients.runtime.where()}: "
                                   f"{clients.deploy_hint()}")
        parameters = {**parameters, INPUT_DATA_PARAMETER: upload_input_data(clients.s3, input_data, bucket, prefix)}
    elif INPUT_DATA_PARAMETER in declared and INPUT_DATA_PARAMETER not in parameters:
        default = declared[INPUT_DATA_PARAMETER].get("DefaultValue")
        if isinstance(default, str) and default.startswith("s3://") and not has_objects(clients.s3, default):
            raise UsageError(f"no training data at {default}: give --input-data PATH (a file or folder of MSRP-layout files)")
    arn = executions.start(sm, pipeline_name, parameters, ClientRequestToken=uuid.uuid4().hex)
    on_event("execution", {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Executing"})
    execution, steps = executions.wait(sm, arn, poll_seconds=clients.timing.execution_poll, sleep=sleep,
                                       timeout_seconds=clients.timing.execution_timeout,
                                       on_step=lambda step: on_event("step", step))
    execution["PipelineName"] = pipeline_name
    execution["Parameters"] = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn).get("PipelineParameters", [])
    metrics, metrics_uri = property_file_metrics(clients, definition, steps)
    package = None
    for step in steps:
        pkg_arn = (step.get("Metadata") or {}).get("RegisterModel", {}).get("Arn")
        if pkg_arn and step.get("StepStatus") == "Succeeded":
            package = sm.describe_model_package(ModelPackageName=pkg_arn)
    on_event("execution", execution)
    return build_record(target=clients.target, execution=execution, steps=steps, metrics=metrics,
                        metrics_uri=metrics_uri, package=package)
