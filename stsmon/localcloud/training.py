"""``stsmon train``'s library side: run the training pipeline, summarize, record.

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
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..errors import NotDeployedError, StsmonError, UsageError
from ..inputs import local_input_files
from ..state import StateDir
from . import LocalEnvironment

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


# -- local --------------------------------------------------------------------------


def stage_input_data(state: StateDir, source: str, bucket: str, prefix: str) -> str:
    """The S3 URI to train on: ``s3://`` as given (it must exist locally); a local
    path or ``file://`` URI is copied into ``s3://{bucket}/{prefix}/input/``
    (replacing what was there)."""
    if source.startswith("s3://"):
        if not state.s3_path(source).exists():
            raise UsageError(f"--input-data {source}: nothing there in the local bucket ({state.s3_path(source)})")
        return source
    files = local_input_files(source)
    uri = f"s3://{bucket}/{prefix}/input/"
    dest = state.s3_path(uri)
    staging = Path(tempfile.mkdtemp(dir=dest.parent if dest.parent.exists() else None, prefix=".input-"))
    try:
        for rel, f in files:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, staging / rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staging), dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return uri


def _property_file_metrics(state: StateDir, execution: dict[str, Any], definition: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    from .pipelines import collect_steps

    specs = collect_steps(definition)
    for rec in execution.get("Steps", []):
        spec = specs.get(rec["StepName"])
        if spec is None or rec.get("StepStatus") != "Succeeded":
            continue
        for pf in spec.raw.get("PropertyFiles") or []:
            outputs = ((rec.get("Properties") or {}).get("ProcessingOutputConfig") or {}).get("Outputs") or []
            for out in outputs:
                if out.get("OutputName") == pf.get("OutputName"):
                    uri = out["S3Output"]["S3Uri"].rstrip("/") + "/" + pf["FilePath"]
                    try:
                        report = json.loads(state.s3_path(uri).read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        continue
                    metrics = metrics_of(report)
                    if metrics:
                        return metrics, uri
    return {}, None


def run_local_training(
    state: StateDir,
    *,
    pipeline_name: str,
    parameters: dict[str, str],
    input_data: str | None,
    bucket: str | None,
    prefix: str,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    clock: Clock,
) -> dict[str, Any]:
    """Start and wait for a local execution (its times from ``clock``); returns the run record (not yet written)."""
    from .executor import resolve_parameters, start_execution
    from .pipelines import load_pipeline
    from .registry import Registry

    pipeline = load_pipeline(state, pipeline_name)
    resolve_parameters(pipeline["PipelineDefinition"], parameters)  # bad names/values: refuse before staging data
    declared = {p["Name"] for p in pipeline["PipelineDefinition"].get("Parameters") or []}
    if input_data is not None:
        if INPUT_DATA_PARAMETER not in declared:
            raise UsageError(f"pipeline {pipeline_name} has no {INPUT_DATA_PARAMETER} parameter; use --parameter")
        if bucket is None:
            raise NotDeployedError("no ArtifactBucketName output is deployed: run `stsmon deploy` first")
        parameters = {**parameters, INPUT_DATA_PARAMETER: stage_input_data(state, input_data, bucket, prefix)}
    elif INPUT_DATA_PARAMETER in declared and INPUT_DATA_PARAMETER not in parameters:
        default = next(p.get("DefaultValue") for p in pipeline["PipelineDefinition"]["Parameters"] if p["Name"] == INPUT_DATA_PARAMETER)
        local = state.s3_path(default) if isinstance(default, str) and default.startswith("s3://") else None
        if local is not None and not (local.exists() and any(p.is_file() for p in local.rglob("*"))):
            raise UsageError(f"no training data at {default}: give --input-data PATH (a file or folder of MSRP-layout files)")
    execution = start_execution(state, pipeline_name, parameters, on_event=on_event, clock=clock)
    metrics, metrics_uri = _property_file_metrics(state, execution, pipeline["PipelineDefinition"])
    package = None
    for rec in execution.get("Steps", []):
        arn = (rec.get("Metadata") or {}).get("RegisterModel", {}).get("Arn")
        if arn and rec.get("StepStatus") == "Succeeded":
            env = LocalEnvironment(account=pipeline.get("Account", "000000000000"), region=pipeline.get("Region", "us-east-1"))
            with Registry(state.registry_db, env=env) as reg:
                package = reg.describe_model_package(ModelPackageName=arn)
    return build_record(
        target="local", execution=execution, steps=execution.get("Steps", []), metrics=metrics, metrics_uri=metrics_uri, package=package
    )
