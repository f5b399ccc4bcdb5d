"""Our two Lambda-backed custom resources (code in ``stacks/lambdas/``).

- :class:`ServedModelPackage` (``Custom::StsApprovedModelPackage``): which
  model package to serve or monitor, resolved at deploy time, never at synth.
- :class:`PipelineCleanup` (``Custom::StsPipelineCleanup``): on deletion in
  the dev profile, stops running pipeline executions and deletes the model
  packages pipeline runs registered.

Their properties and attributes are listed in docs/CONTRACTS.md §3 so the
local runtime can implement the same types. How each answers Create, Update
(and its rollback) and Delete is in the handlers' docstrings.

Each function is deployed without asynchronous retries (a retry would answer
CloudFormation a second time) and each resource with a ``ServiceTimeout`` of
the function's timeout plus :data:`SERVICE_TIMEOUT_SLACK`: the handler answers
before its Lambda times out (``cfn_response``), and if the function dies
without answering, CloudFormation gives up then instead of after an hour.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

import stscontracts
from stscontracts import names, served_package

from ..nag import AWS, acknowledge, acknowledge_custom_resource_lambda
from .sagemaker_arns import endpoint_arn, model_packages_arn, pipeline_arn, pipeline_executions_arn

LAMBDA_DIR = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_14
#: Asset exclusions: bytecode caches would make the asset hash depend on who imported what.
ASSET_EXCLUDE = ["__pycache__", "*.pyc"]

APPROVED_PACKAGE_TYPE = served_package.RESOURCE_TYPE
CLEANUP_TYPE = "Custom::StsPipelineCleanup"
#: ServiceTimeout = the function's timeout + this (queueing and a cold start).
SERVICE_TIMEOUT_SLACK = Duration.minutes(1)


def lambda_files() -> list[tuple[str, Path]]:
    """What the functions' asset holds, as ``(path, file)``: ``stacks/lambdas/*.py`` and the
    contracts package (``approved_package`` runs ``stscontracts.served_package``)."""
    return sorted([(p.name, p) for p in LAMBDA_DIR.glob("*.py")] + stscontracts.package_files())


@functools.cache
def lambda_code() -> Path:
    """The asset folder, staged once per process (removed at exit, after cdk.out has its copy)."""
    staging = Path(tempfile.mkdtemp(prefix="stsmon-lambda-"))
    atexit.register(shutil.rmtree, staging, ignore_errors=True)
    for name, path in lambda_files():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, staging / name)
    return staging


class _HandlerFunction(Construct):
    """A small Python Lambda with its own role, customer-managed policy and
    encrypted log group. Add permissions with :meth:`allow`."""

    def __init__(self, scope: Construct, id: str, *, handler: str, description: str, key: kms.IKey, log_retention: logs.RetentionDays, removal: RemovalPolicy, timeout: Duration) -> None:
        super().__init__(scope, id)
        self.timeout = timeout
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, encryption_key=key, removal_policy=removal)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description)
        # A managed policy rather than an inline one (NIST IAMNoInlinePolicy).
        self.policy = iam.ManagedPolicy(self, "Policy", roles=[self.role], description=description)
        self.allow("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], [self.log_group.log_group_arn])
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            handler=handler,
            code=lambda_.Code.from_asset(str(lambda_code()), exclude=ASSET_EXCLUDE),
            description=description,
            timeout=timeout,
            memory_size=256,
            # One answer per request: a retried invocation would answer again.
            retry_attempts=0,
            role=self.role,
            log_group=self.log_group,
        )
        self.function.node.add_dependency(self.policy)
        acknowledge_custom_resource_lambda(self.function)

    def allow(self, sid: str, actions: Sequence[str], resources: Sequence[str]) -> None:
        self.policy.add_statements(iam.PolicyStatement(sid=sid, actions=list(actions), resources=list(resources)))

    @property
    def service_timeout(self) -> Duration:
        """How long CloudFormation waits for an answer (see the module docstring)."""
        return Duration.seconds(self.timeout.to_seconds() + SERVICE_TIMEOUT_SLACK.to_seconds())


class ServedModelPackage(Construct):
    """The model package to serve: the latest *Approved* one in a group, a
    pinned ARN, or (with ``endpoint_name``) the one an endpoint serves.

    CloudFormation calls the function only when a property changes, so
    ``refresh`` (any text) is how a redeploy picks up a newer approved package;
    see docs/aws.md.

    Attributes are tokens resolved at deploy time: ``model_package_arn``,
    ``baseline_uri``, ``baseline_constraints_uri``, and per metric
    :meth:`threshold` / :meth:`comparison` from the package's constraints.json.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        model_package_group_name: str,
        bucket: s3.IBucket,
        key: kms.IKey,
        prefix: str,
        metric_names: Sequence[str],
        log_retention: logs.RetentionDays,
        removal: RemovalPolicy,
        pinned_arn: str = "",
        refresh: str = "",
        endpoint_name: str = "",
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.handler = _HandlerFunction(
            self, "Handler", handler="approved_package.handler",
            description="Resolves the model package to serve (Custom::StsApprovedModelPackage)",
            key=key, log_retention=log_retention, removal=removal, timeout=Duration.minutes(2),
        )
        sm = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        allow = self.handler.allow
        # ListModelPackages supports no resource-level permission.
        allow("ListPackages", ["sagemaker:ListModelPackages"], ["*"])
        packages = model_packages_arn(self, model_package_group_name)
        allow("DescribePackages", ["sagemaker:DescribeModelPackage"], [packages])
        baselines = bucket.arn_for_objects(names.pipelines_prefix(prefix) + "/*")
        allow("ReadBaselines", ["s3:GetObject"], [baselines])
        allow("DecryptBaselines", ["kms:Decrypt"], [key.key_arn])
        policy = self.handler.policy
        acknowledge(policy, f"{AWS}-IAM5[Resource::*]", "sagemaker:ListModelPackages has no resource-level permissions; the other statements are scoped.")
        acknowledge(policy, f"{AWS}-IAM5[Resource::{packages}]", "Any version of this app's model package group may be the latest approved one.")
        acknowledge(policy, f"{AWS}-IAM5[Resource::{baselines}]", "Baseline files live under per-execution keys of the pipeline output prefix.")
        if endpoint_name:
            # Which config and model the endpoint uses is only known at deploy time.
            configs, models = f"{sm}:endpoint-config/*", f"{sm}:model/*"
            allow(
                "DescribeServing",
                ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
                [endpoint_arn(self, endpoint_name), configs, models],
            )
            reason = "Read-only Describe of the generated config/model names behind our endpoint, unknown until deployment."
            acknowledge(policy, f"{AWS}-IAM5[Resource::{configs}]", reason)
            acknowledge(policy, f"{AWS}-IAM5[Resource::{models}]", reason)

        self.metric_names = tuple(metric_names)
        properties = {
            "ModelPackageGroupName": model_package_group_name,
            "ModelPackageArn": pinned_arn,
            "EndpointName": endpoint_name,
            "MetricNames": list(self.metric_names),
            "Refresh": refresh,
        }
        self.resource = CustomResource(
            self, "Resource", service_token=self.handler.function.function_arn,
            resource_type=APPROVED_PACKAGE_TYPE, properties=properties, service_timeout=self.handler.service_timeout,
        )
        # The role's policy must be attached before the function is called.
        self.resource.node.add_dependency(self.handler.policy)

    @property
    def model_package_arn(self) -> str:
        return self.resource.get_att_string("ModelPackageArn")

    @property
    def model_package_version(self) -> str:
        return self.resource.get_att_string("ModelPackageVersion")

    @property
    def baseline_uri(self) -> str:
        return self.resource.get_att_string("BaselineUri")

    @property
    def data_quality_baseline_uri(self) -> str:
        """The folder of the package's data-quality baseline (``DriftCheckBaselines.ModelDataQuality``)."""
        return self.resource.get_att_string("DataQualityBaselineUri")

    @property
    def baseline_constraints_uri(self) -> str:
        return self.resource.get_att_string("BaselineConstraintsUri")

    def threshold(self, metric: str) -> float:
        """The constraint's threshold for ``metric`` (a number token)."""
        self._check(metric)
        return Token.as_number(self.resource.get_att(f"{metric}Threshold"))

    def comparison(self, metric: str) -> str:
        """The constraint's comparison operator (``LessThanThreshold`` ...), a CloudWatch operator too."""
        self._check(metric)
        return self.resource.get_att_string(f"{metric}Comparison")

    def _check(self, metric: str) -> None:
        if metric not in self.metric_names:
            raise ValueError(f"{metric!r} is not one of the looked-up metrics {self.metric_names}")


class PipelineCleanup(Construct):
    """When the stack is deleted: stop the pipelines' running executions, delete
    the group's packages. Renaming a pipeline, removing this construct (the
    prod profile) or a rollback wipes nothing (``stacks/lambdas/cleanup.py``)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_names: Sequence[str],
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        model_package_group_name: str = "",
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.handler = _HandlerFunction(
            self, "Handler", handler="cleanup.handler",
            description="Stops pipeline executions and deletes model packages on stack deletion (Custom::StsPipelineCleanup)",
            key=key, log_retention=log_retention, removal=RemovalPolicy.DESTROY, timeout=Duration.minutes(14),
        )
        allow, policy = self.handler.allow, self.handler.policy
        pipelines = [pipeline_arn(self, name) for name in pipeline_names]
        executions = [pipeline_executions_arn(self, name) for name in pipeline_names]
        allow("ListExecutions", ["sagemaker:ListPipelineExecutions"], pipelines)
        allow("StopExecutions", ["sagemaker:StopPipelineExecution", "sagemaker:DescribePipelineExecution"], executions)
        for arn in executions:
            acknowledge(policy, f"{AWS}-IAM5[Resource::{arn}]", "Stops whichever executions of this app's pipeline are running at deletion.")
        # Delete wipes only while the stack itself is being deleted (cleanup.py asks).
        allow("ReadStackStatus", ["cloudformation:DescribeStacks"], [stack.stack_id])
        properties: dict = {"PipelineNames": list(pipeline_names)}
        if model_package_group_name:
            packages = model_packages_arn(self, model_package_group_name)
            # ListModelPackages supports no resource-level permission.
            allow("ListPackages", ["sagemaker:ListModelPackages"], ["*"])
            allow("DeletePackages", ["sagemaker:DeleteModelPackage"], [packages])
            acknowledge(policy, f"{AWS}-IAM5[Resource::*]", "sagemaker:ListModelPackages has no resource-level permissions; deletion is scoped to our group.")
            acknowledge(policy, f"{AWS}-IAM5[Resource::{packages}]", "Deletes every version registered in this app's group so the group can be deleted.")
            properties["ModelPackageGroupName"] = model_package_group_name
        self.resource = CustomResource(
            self, "Resource", service_token=self.handler.function.function_arn,
            resource_type=CLEANUP_TYPE, properties=properties, service_timeout=self.handler.service_timeout,
        )
        self.resource.node.add_dependency(policy)
