"""The step scripts, shipped into the artifact bucket as a content-hashed asset.

``processing_scripts/*.py`` and the contracts package (``stscontracts/``,
which the scripts import) are staged into a folder together with a
deterministic ``sourcedir.tar.gz`` of the same files (sorted members, fixed
mtimes and owners, gzip mtime 0) for the Training step's
``sagemaker_submit_directory``. A ``BucketDeployment`` copies that folder to
``s3://{bucket}/{p}/code/{hash}/`` with the paths unchanged. ``{hash}`` is
computed from the files' paths and bytes at synth, so a change to a script or
to the contracts moves the prefix, changes the pipeline definitions that point
at it, and shows in ``cdk diff``; synth needs no AWS call and produces the
same bytes every time.
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

import stscontracts
from stscontracts import names

from ..nag import AWS, INLINE_POLICY_CDK, NIST, acknowledge, acknowledge_custom_resource_lambda, skip_checkov

#: Files of processing_scripts/ that are not shipped.
EXCLUDED = {"__init__.py"}
#: 1980-01-01: a fixed, unremarkable mtime for every tar member.
FIXED_MTIME = 315532800
HASH_LENGTH = 16


def script_files(scripts_dir: Path, *, contracts: bool = True) -> list[tuple[str, Path]]:
    """The shipped files as ``(path in the asset, file)``, sorted by path: the
    top-level ``*.py`` of ``scripts_dir`` and (``contracts``) the files of the
    contracts package under ``stscontracts/``."""
    scripts = [(p.name, p) for p in Path(scripts_dir).glob("*.py") if p.name not in EXCLUDED and p.is_file()]
    if not scripts:
        raise FileNotFoundError(f"no step scripts (*.py) in {scripts_dir}")
    return sorted(scripts + (stscontracts.package_files() if contracts else []))


def content_hash(files: list[tuple[str, Path]]) -> str:
    """A hash of the files' paths and bytes (first ``HASH_LENGTH`` hex digits of SHA-256)."""
    digest = hashlib.sha256()
    for name, path in files:
        data = path.read_bytes()
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()[:HASH_LENGTH]


def sourcedir_archive(files: list[tuple[str, Path]]) -> bytes:
    """A byte-for-byte reproducible ``sourcedir.tar.gz`` of ``files`` (at their paths)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(name=name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def step_code_prefix(prefix: str, scripts_dir: Path) -> str:
    """``{prefix}/code/{hash}/`` for the scripts in ``scripts_dir`` (no staging)."""
    return names.code_prefix(prefix, content_hash(script_files(scripts_dir)))


def stage(scripts_dir: Path, into: Path, archive_name: str, *, contracts: bool = True) -> str:
    """Copy the shipped files and write the archive into ``into``; returns the content hash."""
    files = script_files(scripts_dir, contracts=contracts)
    into.mkdir(parents=True, exist_ok=True)
    for name, path in files:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, into / name)
    (into / archive_name).write_bytes(sourcedir_archive(files))
    return content_hash(files)


class StepCode(Construct):
    """The step scripts in the artifact bucket under ``{prefix}/code/{hash}/``.

    Attributes:
        content_hash: the scripts' content hash (a literal, known at synth).
        key_prefix: ``{prefix}/code/{hash}/``.
        deployment: the ``BucketDeployment`` (depend on it before running jobs).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        scripts_dir: Path,
        bucket: s3.IBucket,
        key: kms.IKey,
        prefix: str,
        archive_name: str,
        log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, id)
        staging = Path(tempfile.mkdtemp(prefix="stsmon-code-"))
        # The asset is copied into cdk.out when it is created below, so the
        # staging folder is only needed until the process ends.
        atexit.register(shutil.rmtree, staging, ignore_errors=True)
        self.content_hash = stage(scripts_dir, staging, archive_name)
        self.key_prefix = names.code_prefix(prefix, self.content_hash)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            sources=[s3deploy.Source.asset(str(staging))],
            destination_bucket=bucket,
            destination_key_prefix=self.key_prefix,
            # Older code prefixes stay (an execution started before an update
            # may still read them); in the dev profile the bucket's
            # auto-delete removes everything on destroy, in prod data stays.
            prune=False,
            retain_on_delete=True,
            server_side_encryption=s3deploy.ServerSideEncryption.AWS_KMS,
            server_side_encryption_aws_kms_key_id=key.key_id,
            memory_limit=256,
            log_group=log_group,
        )
        key.grant_encrypt_decrypt(self.deployment.handler_role)
        self._acknowledge_cdk_handler(bucket_name=bucket.bucket_name)

    def _acknowledge_cdk_handler(self, *, bucket_name: str) -> None:
        """Findings on CDK's BucketDeployment handler (a stack-level singleton we don't write)."""
        stack = Stack.of(self)
        handler = next(c for c in stack.node.children if c.node.id.startswith("Custom::CDKBucketDeployment"))
        assets = f"arn:{stack.partition}:s3:::cdk-hnb659fds-assets-{stack.account}-{stack.region}/*"
        findings = {
            f"{AWS}-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]":
                "CDK's BucketDeployment handler role; the AWS managed policy only allows writing its own logs.",
            f"{AWS}-L1": "CDK's BucketDeployment handler pins its runtime with its AWS CLI layer; it is upgraded with aws-cdk-lib.",
            f"{AWS}-IAM5[Resource::{assets}]": "Read access to the CDK bootstrap asset bucket, where the staged scripts are uploaded by cdk deploy.",
            f"{AWS}-IAM5[Resource::arn:{stack.partition}:s3:::{bucket_name}/*]": "Copies the scripts into the artifact bucket (CDK's grant on the destination bucket).",
            f"{NIST}-IAMNoInlinePolicy": INLINE_POLICY_CDK,
        }
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*", "kms:GenerateDataKey*", "kms:ReEncrypt*"):
            findings[f"{AWS}-IAM5[Action::{action}]"] = "Action wildcards of CDK's read/write grants to the BucketDeployment handler (asset and artifact buckets, artifact key)."
        for rule, reason in findings.items():
            acknowledge(handler, rule, reason)
        acknowledge_custom_resource_lambda(handler)
        skip_checkov(
            handler.node.default_child,
            "CKV_AWS_173",
            "CDK's BucketDeployment handler sets no secrets in its environment (only CLI settings).",
        )

    @property
    def handler_role(self) -> iam.IRole:
        return self.deployment.handler_role
