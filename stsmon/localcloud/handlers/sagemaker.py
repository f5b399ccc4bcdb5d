"""Local meanings of the training-side SageMaker resource types.

- ``AWS::SageMaker::Pipeline``: the definition (``PipelineDefinitionBody``
  or ``PipelineDefinitionS3Location``, read from the local bucket or the
  assembly's assets at deploy time, as SageMaker does) is registered in
  ``pipelines/{name}.json``; :mod:`stsmon.localcloud.executor` runs it.
  ``Ref`` gives the pipeline name.
- ``AWS::SageMaker::ModelPackageGroup``: a group in the model registry.
  ``Ref`` and ``ModelPackageGroupArn`` give its ARN. Deleting it deletes its
  packages first (a dev ``destroy`` leaves nothing behind; production stacks
  retain the group with ``DeletionPolicy: Retain``).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from ...errors import StsmonError
from ..pipelines import definition_problems, pipeline_arn, pipeline_record_path, remove_pipeline, write_pipeline
from ..registry import RegistryError, ResourceNotFound
from . import DeployContext, DeployedResource, HandlerResult, ResourceHandler, is_resolved, register


def _definition(ctx: DeployContext, props: dict[str, Any]) -> dict[str, Any] | None:
    """The parsed definition, or None when it is not known yet (check phase)."""
    spec = props.get("PipelineDefinition") or {}
    if "PipelineDefinitionBody" in spec:
        body = spec["PipelineDefinitionBody"]
        if not is_resolved(body):
            return None
        where = "PipelineDefinitionBody"
    elif "PipelineDefinitionS3Location" in spec:
        loc = spec["PipelineDefinitionS3Location"]
        if not is_resolved(loc):
            return None
        bucket, key = loc.get("Bucket"), loc.get("Key")
        where = f"s3://{bucket}/{key}"
        path = ctx.asset_path(bucket, key) or ctx.state.s3_path(where)
        if not path.is_file():
            raise StsmonError(f"pipeline definition {where} does not exist locally")
        body = path.read_text(encoding="utf-8")
    else:
        raise StsmonError("PipelineDefinition needs PipelineDefinitionBody or PipelineDefinitionS3Location")
    if isinstance(body, dict):
        definition = body
    else:
        try:
            definition = json.loads(body)
        except ValueError as exc:
            raise StsmonError(f"the pipeline definition ({where}) is not JSON: {exc}") from None
    problems = definition_problems(definition)
    if problems:
        raise StsmonError(f"the pipeline definition ({where}) cannot run locally: " + "; ".join(problems))
    return definition


@register("AWS::SageMaker::Pipeline")
class PipelineHandler(ResourceHandler):
    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        if not props.get("PipelineName"):
            raise StsmonError("PipelineName is required")
        _definition(ctx, props)

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        name = props["PipelineName"]
        path = pipeline_record_path(ctx.state, name)
        if path.exists():
            existing = json.loads(path.read_text(encoding="utf-8"))
            if existing.get("Stack") not in (None, ctx.stack_name):
                raise StsmonError(f"pipeline {name} already exists (deployed by stack {existing.get('Stack')})")
        return self._write(ctx, logical_id, props, created=None)

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        if props["PipelineName"] != previous.physical_id:
            result = self.create(ctx, logical_id, props)
            self.delete(ctx, logical_id, previous)
            return result
        return self._write(ctx, logical_id, props, created=previous.attributes.get("CreationTime"))

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        remove_pipeline(ctx.state, previous.physical_id)

    def _write(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], created: str | None) -> HandlerResult:
        name = props["PipelineName"]
        now = ctx.clock.now().astimezone(UTC).isoformat(timespec="seconds")
        arn = pipeline_arn(ctx.env, name)
        record = {
            "PipelineName": name,
            "PipelineArn": arn,
            "PipelineDisplayName": props.get("PipelineDisplayName", name),
            "PipelineDescription": props.get("PipelineDescription", ""),
            "RoleArn": props.get("RoleArn"),
            "ParallelismConfiguration": props.get("ParallelismConfiguration", {}),
            "PipelineDefinition": _definition(ctx, props),
            "Region": ctx.env.region,
            "Account": ctx.env.account,
            "Stack": ctx.stack_name,
            "LogicalId": logical_id,
            "CreationTime": created or now,
            "LastModifiedTime": now,
        }
        write_pipeline(ctx.state, record)
        return HandlerResult(name, {"PipelineName": name, "PipelineArn": arn, "CreationTime": record["CreationTime"]})


@register("AWS::SageMaker::ModelPackageGroup")
class ModelPackageGroupHandler(ResourceHandler):
    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        name = props.get("ModelPackageGroupName")
        if not name:
            raise StsmonError("ModelPackageGroupName is required locally")
        params: dict[str, Any] = {"ModelPackageGroupName": name}
        if props.get("ModelPackageGroupDescription"):
            params["ModelPackageGroupDescription"] = props["ModelPackageGroupDescription"]
        try:
            arn = ctx.registry.create_model_package_group(**params)["ModelPackageGroupArn"]
        except RegistryError:
            # Kept from an earlier deploy (retained group, or state restored): adopt it.
            group = ctx.registry.describe_model_package_group(ModelPackageGroupName=name)
            arn = group["ModelPackageGroupArn"]
            ctx.echo(f"{ctx.stack_name}: model package group {name} already exists in the registry: adopted")
        return self._result(ctx, name, arn)

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        name = props.get("ModelPackageGroupName")
        if name != previous.properties.get("ModelPackageGroupName"):
            result = self.create(ctx, logical_id, props)
            self.delete(ctx, logical_id, previous)
            return result
        group = ctx.registry.describe_model_package_group(ModelPackageGroupName=name)
        return self._result(ctx, name, group["ModelPackageGroupArn"])

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        name = previous.properties.get("ModelPackageGroupName")
        reg = ctx.registry
        try:
            packages = reg.list_model_packages(ModelPackageGroupName=name)["ModelPackageSummaryList"]
            for pkg in packages:
                reg.delete_model_package(ModelPackageName=pkg["ModelPackageArn"])
            reg.delete_model_package_group(ModelPackageGroupName=name)
        except ResourceNotFound:
            return
        if packages:
            ctx.echo(f"{ctx.stack_name}: deleted {len(packages)} model package(s) of group {name}")

    @staticmethod
    def _result(ctx: DeployContext, name: str, arn: str) -> HandlerResult:
        group = ctx.registry.describe_model_package_group(ModelPackageGroupName=name)
        return HandlerResult(
            arn,
            {
                "ModelPackageGroupArn": arn,
                "ModelPackageGroupName": name,
                "CreationTime": group["CreationTime"].isoformat(),
                "ModelPackageGroupStatus": "Completed",
            },
        )


@register("Custom::StsPipelineCleanup")
class PipelineCleanupHandler(ResourceHandler):
    """``stacks/lambdas/cleanup.py`` locally, with its lifecycle: create and
    update do nothing and keep the id (a renamed pipeline is no replacement);
    delete acts only when the stack itself is destroyed — a resource removed
    from the template (the switch to prod) or rolled back wipes nothing. Then
    it stops the running local executions of ``PipelineNames`` (SIGTERM to
    their executor, which records them Stopped) and deletes every package of
    ``ModelPackageGroupName``."""

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        return HandlerResult("cleanup-" + "-".join(props.get("PipelineNames", []))[:200], {})

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        return HandlerResult(previous.physical_id, {})

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        from ..executions import stop_running_executions

        if not ctx.deleting_stack:
            return
        for name in previous.properties.get("PipelineNames", []):
            for execution_id in stop_running_executions(ctx.state, name):
                ctx.echo(f"{ctx.stack_name}: stopped execution {execution_id} of pipeline {name}")
        group = previous.properties.get("ModelPackageGroupName")
        if group:
            try:
                packages = ctx.registry.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
            except ResourceNotFound:
                return
            for pkg in packages:
                ctx.registry.delete_model_package(ModelPackageName=pkg["ModelPackageArn"])
            if packages:
                ctx.echo(f"{ctx.stack_name}: deleted {len(packages)} model package(s) of group {group}")
