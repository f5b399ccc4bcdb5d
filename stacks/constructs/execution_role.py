"""The least-privilege SageMaker execution role.

One role runs the pipelines, their jobs, the model and the monitoring jobs.
It replaces ``AmazonSageMakerFullAccess`` with exactly what the workflow does:

- S3: read/write only under ``{prefix}/`` of the artifact bucket;
- KMS: use of the artifact key only (grants only for AWS resources);
- CloudWatch Logs: only ``/aws/sagemaker/*`` log groups;
- CloudWatch metrics: only the monitor's namespace and SageMaker's own;
- ECR: pull only the SageMaker images the workflow uses;
- SageMaker: create/describe/stop the pipeline's jobs, register packages in
  our group;
- ``iam:PassRole`` on itself only, only to SageMaker.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ..nag import AWS, acknowledge
from .sagemaker_arns import model_packages_arn


class SageMakerExecutionRole(Construct):
    """The role; ``role`` is the ``iam.Role``.

    Args:
        model_package_group_arn: the group's own ARN (``Fn::GetAtt`` of the
            ``AWS::SageMaker::ModelPackageGroup``).
        image_repositories: ``(registry account, repository name)`` pairs
            the jobs and the endpoint may pull from.
        metric_namespaces: CloudWatch namespaces the jobs may publish to.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        bucket_name: str,
        key: kms.IKey,
        model_package_group_name: str,
        model_package_group_arn: str,
        image_repositories: Sequence[tuple[str, str]],
        metric_namespaces: Sequence[str],
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            description=f"{prefix}: SageMaker pipelines, jobs, model and monitor of stsmodelmonitor",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
        )

        def arn(service: str, resource: str, account: str | None = None) -> str:
            return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account if account is None else account}:{resource}"

        bucket_arn = f"arn:{stack.partition}:s3:::{bucket_name}"
        packages = model_packages_arn(self, model_package_group_name)
        statements = [
            iam.PolicyStatement(
                sid="ArtifactsReadWrite",
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[f"{bucket_arn}/{prefix}/*"],
            ),
            iam.PolicyStatement(
                sid="ArtifactsList",
                # Only ListBucket: nothing the jobs run calls GetBucketLocation, and
                # GetBucketLocation never carries s3:prefix, so under this condition
                # it was a grant that could never match.
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}/*", f"{prefix}/"]}},
            ),
            iam.PolicyStatement(
                sid="ArtifactKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[key.key_arn],
            ),
            iam.PolicyStatement(
                sid="ArtifactKeyGrantsForVolumes",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            iam.PolicyStatement(
                sid="SageMakerLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[arn("logs", "log-group:/aws/sagemaker/*")],
            ),
            iam.PolicyStatement(
                sid="Metrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource; the namespace condition scopes it
                conditions={"StringLike": {"cloudwatch:namespace": list(metric_namespaces)}},
            ),
            iam.PolicyStatement(
                sid="PullImagesAuth",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],  # GetAuthorizationToken has no resource
            ),
            iam.PolicyStatement(
                sid="PullImages",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[arn("ecr", f"repository/{repo}", account) for account, repo in image_repositories],
            ),
            iam.PolicyStatement(
                sid="PipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                # Jobs a pipeline starts are named pipelines-{execution}-{step}-...
                resources=[arn("sagemaker", "processing-job/pipelines-*"), arn("sagemaker", "training-job/pipelines-*")],
            ),
            iam.PolicyStatement(
                sid="RegisterModels",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags"],
                # Package ARNs keep the group name's case (stacks/constructs/sagemaker_arns.py).
                resources=[model_package_group_arn, packages],
            ),
        ]
        statements.append(
            iam.PolicyStatement(
                sid="PassOnlyItselfOnlyToSageMaker",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # A customer-managed policy, not an inline one (NIST IAMNoInlinePolicy).
        self.policy = iam.ManagedPolicy(self, "Policy", statements=statements, roles=[self.role], description=f"{prefix}: SageMaker execution permissions")
        for resource, reason in (
            (f"{bucket_arn}/{prefix}/*", "Jobs read and write under this app's prefix of its own bucket (code, inputs, step outputs, capture, reports)."),
            (arn("logs", "log-group:/aws/sagemaker/*"), "SageMaker jobs and endpoints log to per-job streams of the /aws/sagemaker/ log groups."),
            ("*", "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level permissions; PutMetricData is limited by a namespace condition."),
            (arn("sagemaker", "processing-job/pipelines-*"), "Job names are generated per execution by SageMaker Pipelines (pipelines-{execution}-{step}-...)."),
            (arn("sagemaker", "training-job/pipelines-*"), "Job names are generated per execution by SageMaker Pipelines (pipelines-{execution}-{step}-...)."),
            (packages, "The pipeline registers a new version in this app's model package group on every run."),
        ):
            acknowledge(self.policy, f"{AWS}-IAM5[Resource::{resource}]", reason)
