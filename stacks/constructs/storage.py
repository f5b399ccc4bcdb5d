"""The artifact store: a customer-managed KMS key and the artifact bucket.

Everything the workflow writes lives under ``s3://{bucket}/{prefix}/``:
step code, training input, pipeline step outputs, data capture, ground
truth and monitoring reports (docs/CONTRACTS.md §3). The bucket is
SSE-KMS with a bucket key, blocks public access, refuses plain HTTP, keeps
versions, logs access to a second bucket, and expires captured and derived
data after ``data_retention_days``. In the ``dev`` profile ``cdk destroy``
removes both buckets with their contents and the key; in ``prod`` they are
retained.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stscontracts import names

from ..nag import NIST, acknowledge, skip_checkov, skip_checkov_custom_resource_lambda



class ArtifactStore(Construct):
    """KMS key, artifact bucket and access-log bucket.

    Both buckets have literal names, ``{prefix}-artifacts-{account}-{region}``
    and ``{prefix}-access-logs-{account}-{region}``: operators type them, the
    local runtime maps them to folders, and IAM policies in every stack name
    them without cross-stack tokens.

    Attributes:
        key: the customer-managed key (rotation on).
        bucket: the artifact bucket; ``bucket_name`` its literal name.
        access_logs: the server-access-log bucket (SSE-S3: S3 log delivery
            cannot write with a customer-managed key).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        retain: bool,
        data_retention_days: int,
        noncurrent_version_days: int,
    ) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        stack = Stack.of(self)
        self.bucket_name = artifact_bucket_name(prefix, stack.account, stack.region)

        self.key = kms.Key(
            self,
            "Key",
            description=f"{prefix}: artifacts, data capture, volumes and logs of the stsmodelmonitor workflow",
            enable_key_rotation=True,
            alias=f"alias/{prefix}-artifacts",
            removal_policy=removal,
            pending_window=Duration.days(7 if not retain else 30),
        )
        # CloudWatch Logs encrypts our log groups with the key (the alarm topic's
        # grant for CloudWatch alarms is added where the topic is: stacks/foundation.py).
        # No kms:Describe*: DescribeKey carries no encryption context, so under this
        # condition it could never match (tests/stacks/test_authorization.py).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"}},
            )
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"{prefix}-access-logs-{stack.account}-{stack.region}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
            auto_delete_objects=not retain,
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(max(data_retention_days, 90))),
                s3.LifecycleRule(id="ExpireOldVersions", noncurrent_version_expiration=Duration.days(noncurrent_version_days)),
            ],
        )

        rules = [
            s3.LifecycleRule(
                id=f"Expire-{name}",
                prefix=f"{prefix}/{name}/",
                expiration=Duration.days(data_retention_days),
            )
            for name in names.EXPIRING_KEYS
        ]
        rules += [
            s3.LifecycleRule(
                id="ExpireOldVersions",
                noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                expired_object_delete_marker=True,
            ),
            s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
        ]
        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            bucket_name=self.bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{prefix}-artifacts/",
            removal_policy=removal,
            auto_delete_objects=not retain,
            lifecycle_rules=rules,
        )

        acknowledge(
            self.access_logs,
            f"{NIST}-S3DefaultEncryptionKMS",
            "S3 server access log delivery cannot write to a bucket encrypted with a customer-managed KMS key; "
            "the log bucket uses SSE-S3, blocks public access and enforces TLS.",
        )
        skip_checkov(
            self.access_logs.node.default_child,
            "CKV_AWS_18",
            "This is the access-log bucket: logging it to itself would log its own log deliveries.",
        )
        if not retain:
            # CDK's auto-delete provider (dev profile only): a stack-level singleton Lambda.
            provider = Stack.of(self).node.find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
            skip_checkov_custom_resource_lambda(provider.node.find_child("Handler"))
        for bucket in (self.bucket, self.access_logs):
            acknowledge(
                bucket,
                f"{NIST}-S3BucketReplicationEnabled",
                "Single-region workflow: artifacts are reproducible from the pipeline and the input data; "
                "cross-region replication would double storage cost. Add a replication rule for disaster recovery if needed.",
            )


def artifact_bucket_name(prefix: str, account: str, region: str) -> str:
    """The literal name of the artifact bucket."""
    return f"{prefix}-artifacts-{account}-{region}"


def s3_uri(bucket_name: str, *parts: str) -> str:
    """``s3://{bucket}/{parts...}``."""
    return "/".join([f"s3://{bucket_name}", *parts])
