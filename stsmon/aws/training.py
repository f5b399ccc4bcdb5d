"""``stsmon train --target aws``: start the deployed SageMaker pipeline and follow it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ..errors import StsmonError
from ..inputs import local_input_files
from ..localcloud.training import INPUT_DATA_PARAMETER, build_record, metrics_of

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


def upload_input_data(s3: Any, source: str, bucket: str, prefix: str) -> str:
    """``s3://`` as given; a local path / ``file://`` is uploaded to
    ``s3://{bucket}/{prefix}/input/``, replacing what was there."""
    if source.startswith("s3://"):
        return source
    key_prefix = f"{prefix}/input/"
    keys = {key_prefix + rel: f for rel, f in local_input_files(source)}
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key_prefix).get("Contents", [])
        stale = [{"Key": o["Key"]} for o in listed if o["Key"] not in keys]
        if stale:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": stale, "Quiet": True})
        for key, f in keys.items():
            s3.put_object(Bucket=bucket, Key=key, Body=f.read_bytes())
    except ClientError as exc:
        raise StsmonError(f"uploading the training data to s3://{bucket}/{key_prefix} failed: {exc}") from None
    return f"s3://{bucket}/{key_prefix}"


def run_aws_training(
    sm: Any,
    s3: Any,
    *,
    pipeline_name: str,
    parameters: dict[str, str],
    input_data: str | None,
    bucket: str | None,
    prefix: str,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Start the pipeline on AWS, wait for it, return the run record."""
    on_event = on_event or (lambda kind, data: None)
    if input_data is not None:
        if bucket is None:
            raise StsmonError("the artifact bucket is unknown: is the foundation stack deployed?")
        parameters = {**parameters, INPUT_DATA_PARAMETER: upload_input_data(s3, input_data, bucket, prefix)}
    try:
        arn = sm.start_pipeline_execution(
            PipelineName=pipeline_name,
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
            ClientRequestToken=uuid.uuid4().hex,
        )["PipelineExecutionArn"]
    except ClientError as exc:
        raise StsmonError(f"start_pipeline_execution({pipeline_name}) failed: {exc}") from None
    seen: dict[str, str] = {}
    execution: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    on_event("execution", {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Executing"})
    while True:
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        steps = list(reversed(sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Descending").get("PipelineExecutionSteps", [])))
        for step in steps:
            step["StepType"] = step_type(step)
        for step in steps:
            if seen.get(step["StepName"]) != step.get("StepStatus"):
                seen[step["StepName"]] = step.get("StepStatus")
                on_event("step", step)
        if execution.get("PipelineExecutionStatus") in TERMINAL:
            break
        (sleep or time.sleep)(poll_seconds)
    execution["PipelineName"] = pipeline_name
    execution["Parameters"] = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn).get("PipelineParameters", [])
    metrics, metrics_uri = _metrics(sm, s3, pipeline_name, steps)
    package = None
    for step in steps:
        pkg_arn = (step.get("Metadata") or {}).get("RegisterModel", {}).get("Arn")
        if pkg_arn and step.get("StepStatus") == "Succeeded":
            package = sm.describe_model_package(ModelPackageName=pkg_arn)
    on_event("execution", execution)
    return build_record(target="aws", execution=execution, steps=steps, metrics=metrics, metrics_uri=metrics_uri, package=package)


def _metrics(sm: Any, s3: Any, pipeline_name: str, steps: list[dict[str, Any]]) -> tuple[dict[str, float], str | None]:
    """Metrics from the first property file of a succeeded processing step."""
    definition = json.loads(sm.describe_pipeline(PipelineName=pipeline_name)["PipelineDefinition"])
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
        job = sm.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
        outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in job["ProcessingOutputConfig"]["Outputs"]}
        for pf in files[step["StepName"]]:
            if pf["OutputName"] not in outputs:
                continue
            uri = outputs[pf["OutputName"]].rstrip("/") + "/" + pf["FilePath"]
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            try:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                return metrics_of(json.loads(body)), uri
            except (ClientError, ValueError):
                continue
    return {}, None
