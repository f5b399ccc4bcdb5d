"""``{p}-foundation``: what every other stack uses and what outlives them.

KMS key, artifact and access-log buckets, the SageMaker execution role, the
model package group, the alarm topic and the rule that sends the group's
approval events to it. Retained in ``prod``; destroyable in
``dev`` (after the stacks that use it).
"""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline_code.images import model_monitor_repository, sklearn_repository
from stscontracts import names
from stscontracts.config import Config

from .constructs.execution_role import SageMakerExecutionRole
from .constructs.registry_events import ModelPackageEvents
from .constructs.storage import ArtifactStore, s3_uri


class FoundationStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = config
        retain = cfg.is_prod
        self.store = ArtifactStore(
            self,
            "Store",
            prefix=cfg.prefix,
            retain=retain,
            data_retention_days=cfg.data_retention_days,
            noncurrent_version_days=cfg.noncurrent_version_days,
        )
        self.key = self.store.key
        self.bucket = self.store.bucket
        self.bucket_name = self.store.bucket_name

        repositories = [sklearn_repository(cfg.region, cfg.sklearn_image_version)]
        if cfg.monitor_backend == "model-monitor":
            repositories.append(model_monitor_repository(cfg.region))
        self.package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=cfg.model_package_group_name,
            model_package_group_description=f"Paraphrase models registered by the {cfg.pipeline_name} pipeline",
        )
        self.package_group.apply_removal_policy(RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY)

        self.execution_role = SageMakerExecutionRole(
            self,
            "ExecutionRole",
            prefix=cfg.prefix,
            bucket_name=self.bucket_name,
            key=self.key,
            model_package_group_name=cfg.model_package_group_name,
            model_package_group_arn=self.package_group.attr_model_package_group_arn,
            image_repositories=repositories,
            metric_namespaces=[names.METRICS_NAMESPACE, names.MODEL_MONITOR_NAMESPACE, "/aws/sagemaker/*"],
        ).role

        alarm_topic_name = f"{cfg.prefix}-alarms"
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=alarm_topic_name,
            display_name=f"{cfg.prefix} endpoint and model-quality alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.allow_alarms_to_notify(cfg.prefix)
        # A new version waiting for approval, or one approved: the same topic tells a person.
        self.package_events = ModelPackageEvents(
            self,
            "ModelPackageEvents",
            prefix=cfg.prefix,
            model_package_group_name=cfg.model_package_group_name,
            topic=self.alarm_topic,
            topic_name=alarm_topic_name,
            key=self.key,
        )
        self.package_events.node.add_dependency(self.package_group)

        self.ground_truth_uri = self.uri(names.ground_truth_prefix(cfg.prefix))
        CfnOutput(self, "ArtifactBucketName", value=self.bucket_name, description="Artifact bucket")
        CfnOutput(self, "KmsKeyArn", value=self.key.key_arn, description="Key of the bucket, volumes, capture and logs")
        CfnOutput(self, "ExecutionRoleArn", value=self.execution_role.role_arn, description="SageMaker execution role")
        CfnOutput(self, "ModelPackageGroupName", value=cfg.model_package_group_name, description="Model registry group")
        CfnOutput(self, "GroundTruthUri", value=self.ground_truth_uri, description="Upload ground truth under {uri}/yyyy/mm/dd/hh/")
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn, description="Subscribe to get alarms")

    def alarm_arn_pattern(self, prefix: str) -> str:
        """Every alarm of this app: they are all named ``{prefix}-...``."""
        return f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:{prefix}-*"

    def allow_alarms_to_notify(self, prefix: str) -> None:
        """Let this app's CloudWatch alarms publish to the alarm topic.

        ``enforce_ssl`` gives the topic a policy, and a topic policy replaces
        SNS's default one (which let the account's principals publish), so
        without this statement CloudWatch is refused ("... is not authorized
        to perform: SNS:Publish", AWS re:Post "Why didn't I receive an SNS
        notification for my CloudWatch alarm trigger?"). The topic is encrypted
        with the artifact key, and SNS uses the key on behalf of the publisher:
        the key policy must let CloudWatch use it too (SNS Developer Guide,
        "Enable compatibility between event sources from AWS services and
        encrypted topics"). Both grants are scoped to this account's alarms
        named ``{prefix}-*`` (aws:SourceAccount, aws:SourceArn: the confused-deputy
        guard; CloudWatch alarms carry both keys to SNS and to KMS, unlike
        EventBridge, whose KMS requests carry neither).
        """
        conditions = {
            "StringEquals": {"aws:SourceAccount": self.account},
            "ArnLike": {"aws:SourceArn": self.alarm_arn_pattern(prefix)},
        }
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions=conditions,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=conditions,
            )
        )

    def uri(self, *parts: str) -> str:
        """``s3://{artifact bucket}/{parts...}`` (a literal)."""
        return s3_uri(self.bucket_name, *parts)

    def artifact_bucket(self, scope: Construct) -> s3.IBucket:
        """The artifact bucket as seen from another stack: by its literal name,
        so policies there carry readable ARNs instead of cross-stack tokens."""
        return s3.Bucket.from_bucket_attributes(scope, "ArtifactBucket", bucket_name=self.bucket_name, encryption_key=self.key)
