"""Local meanings of the foundation resource types.

- ``AWS::S3::Bucket``: the folder ``s3/{bucket}`` under the state directory.
- ``Custom::CDKBucketDeployment``: copies its source assets (the cdk.out
  folders/zips) into the destination bucket prefix, with ``Prune`` and
  ``RetainOnDelete`` semantics of the CDK's BucketDeployment.
- ``Custom::S3AutoDeleteObjects``: empties its bucket when it is deleted.
- Record-only types (listed explicitly in :data:`RECORD_ONLY`): IAM, KMS,
  Logs, Lambda, SNS, SSM parameters, bucket policies, CDK metadata. They are
  recorded with a physical id and the attributes ``Fn::GetAtt`` asks for
  (ARNs in the local account) and have no other local effect: there is no
  IAM or encryption locally, and the only Lambda functions in the assembly
  back custom resources whose meaning is implemented here directly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from ...errors import StsmonError
from . import DeployContext, DeployedResource, HandlerResult, ResourceHandler, is_resolved, register


def generated_name(ctx: DeployContext, logical_id: str, *, max_len: int = 64, lower: bool = False) -> str:
    """A CloudFormation-style generated name, deterministic: ``{stack}-{logicalId}-{HASH}``."""
    digest = hashlib.sha256(f"{ctx.stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{ctx.stack_name}-{logical_id}"
    name = f"{head[: max_len - len(digest) - 1]}-{digest}"
    return name.lower() if lower else name


def _uuid(ctx: DeployContext, logical_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stsmon:{ctx.env.account}:{ctx.env.region}:{ctx.stack_name}/{logical_id}"))


# -- record-only types -----------------------------------------------------------

Ident = Callable[[DeployContext, str, dict[str, Any]], HandlerResult]


def _role(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    name = p.get("RoleName") or generated_name(ctx, lid)
    path = p.get("Path", "/")
    return HandlerResult(name, {"Arn": ctx.env.arn("iam", f"role{path}{name}", region=""), "RoleId": "AROA" + _uuid(ctx, lid)[:17].upper().replace("-", "")})


def _managed_policy(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    name = p.get("ManagedPolicyName") or generated_name(ctx, lid, max_len=128)
    arn = ctx.env.arn("iam", f"policy{p.get('Path', '/')}{name}", region="")
    return HandlerResult(arn, {"PolicyArn": arn})


def _kms_key(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    key_id = _uuid(ctx, lid)
    return HandlerResult(key_id, {"Arn": ctx.env.arn("kms", f"key/{key_id}"), "KeyId": key_id})


def _log_group(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    name = p.get("LogGroupName") or generated_name(ctx, lid, max_len=512)
    return HandlerResult(name, {"Arn": ctx.env.arn("logs", f"log-group:{name}:*")})


def _function(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    name = p.get("FunctionName") or generated_name(ctx, lid)
    return HandlerResult(name, {"Arn": ctx.env.arn("lambda", f"function:{name}")})


def _layer(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    name = p.get("LayerName") or generated_name(ctx, lid)
    arn = ctx.env.arn("lambda", f"layer:{name}:1")
    return HandlerResult(arn, {"LayerVersionArn": arn})


def _topic(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    name = p.get("TopicName") or generated_name(ctx, lid, max_len=256)
    arn = ctx.env.arn("sns", name)
    return HandlerResult(arn, {"TopicArn": arn, "TopicName": name})


def _ssm_parameter(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    name = p.get("Name") or generated_name(ctx, lid)
    return HandlerResult(name, {"Type": p.get("Type", "String"), "Value": p.get("Value")})


def _plain(ctx: DeployContext, lid: str, p: dict[str, Any]) -> HandlerResult:
    return HandlerResult(generated_name(ctx, lid), {})


#: type -> how its physical id and attributes are made. No local effect.
RECORD_ONLY: dict[str, Ident] = {
    "AWS::CDK::Metadata": _plain,
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _plain,
    "AWS::IAM::ManagedPolicy": _managed_policy,
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": lambda ctx, lid, p: HandlerResult(p.get("AliasName") or generated_name(ctx, lid), {}),
    "AWS::Logs::LogGroup": _log_group,
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::EventInvokeConfig": _plain,
    "AWS::Lambda::LayerVersion": _layer,
    "AWS::Lambda::Permission": _plain,
    # Ref is the bucket's name (CloudFormation's schema: primaryIdentifier /properties/Bucket)
    "AWS::S3::BucketPolicy": lambda ctx, lid, p: HandlerResult(str(p.get("Bucket") or generated_name(ctx, lid)), {}),
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::TopicPolicy": _plain,
    "AWS::SNS::Subscription": lambda ctx, lid, p: HandlerResult(ctx.env.arn("sns", f"{generated_name(ctx, lid)}:{_uuid(ctx, lid)}"), {}),
    "AWS::SSM::Parameter": _ssm_parameter,
}


class RecordOnlyHandler(ResourceHandler):
    """Recorded with a local physical id and attributes; no other local effect.
    One subclass per type in :data:`RECORD_ONLY` (``make`` builds the result)."""

    make: Ident = staticmethod(_plain)

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        return self.make(ctx, logical_id, props)

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        return self.make(ctx, logical_id, props)

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        return None


for _rtype, _make in RECORD_ONLY.items():
    _cls = type(f"RecordOnly_{_rtype.replace('::', '_')}", (RecordOnlyHandler,), {"make": staticmethod(_make)})
    register(_rtype)(_cls)


# -- S3 -----------------------------------------------------------------------------


def _bucket_attributes(ctx: DeployContext, name: str) -> dict[str, Any]:
    suffix = ctx.env.url_suffix
    return {
        "Arn": f"arn:{ctx.env.partition}:s3:::{name}",
        "DomainName": f"{name}.s3.{suffix}",
        "RegionalDomainName": f"{name}.s3.{ctx.env.region}.{suffix}",
        "DualStackDomainName": f"{name}.s3.dualstack.{ctx.env.region}.{suffix}",
        "WebsiteURL": f"http://{name}.s3-website-{ctx.env.region}.{suffix}",
    }


def bucket_folder(ctx: DeployContext, bucket: str) -> Path:
    return ctx.state.s3_path(f"s3://{bucket}/")


@register("AWS::S3::Bucket")
class BucketHandler(ResourceHandler):
    """A bucket is the folder ``s3/{bucket}``. Deleting a non-empty bucket keeps
    the folder and says so (CloudFormation cannot delete a non-empty bucket;
    the CDK's ``autoDeleteObjects`` empties it first)."""

    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("BucketName")
        if isinstance(name, str) and (name != name.lower() or "/" in name or not 3 <= len(name) <= 63):
            raise StsmonError(f"invalid bucket name {name!r}")

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        name = props.get("BucketName") or generated_name(ctx, logical_id, max_len=63, lower=True)
        bucket_folder(ctx, name).mkdir(parents=True, exist_ok=True)
        return HandlerResult(name, _bucket_attributes(ctx, name))

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        name = props.get("BucketName") or previous.physical_id
        if name != previous.physical_id:  # a new name replaces the bucket
            result = self.create(ctx, logical_id, props)
            self.delete(ctx, logical_id, previous)
            return result
        bucket_folder(ctx, name).mkdir(parents=True, exist_ok=True)
        return HandlerResult(name, _bucket_attributes(ctx, name))

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        folder = bucket_folder(ctx, previous.physical_id)
        if not folder.exists():
            return
        if any(folder.iterdir()):
            ctx.echo(f"{ctx.stack_name}: bucket {previous.physical_id} is not empty: its folder {folder} is kept")
            return
        folder.rmdir()


@register("Custom::S3AutoDeleteObjects")
class AutoDeleteObjectsHandler(ResourceHandler):
    """Empties ``BucketName`` when the resource is deleted (the bucket is being deleted)."""

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        return HandlerResult(f"{props.get('BucketName')}-auto-delete", {})

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        return self.create(ctx, logical_id, props)

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        bucket = previous.properties.get("BucketName")
        if not bucket:
            return
        folder = bucket_folder(ctx, bucket)
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            ctx.echo(f"{ctx.stack_name}: emptied bucket {bucket}")


# -- BucketDeployment -----------------------------------------------------------


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for info in zf.infolist():
        target = (dest / info.filename).resolve()
        if target != root and root not in target.parents:
            raise StsmonError(f"asset archive entry escapes the destination: {info.filename!r}")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)


@register("Custom::CDKBucketDeployment")
class BucketDeploymentHandler(ResourceHandler):
    """The CDK's BucketDeployment: sources (asset bucket/key) into
    ``s3://DestinationBucketName/DestinationBucketKeyPrefix``.

    ``Extract`` (default true) unpacks the zip (or copies the cdk.out folder
    it was made from); ``Prune`` (default true) removes destination files not
    in the sources; ``RetainOnDelete`` (default true) keeps the files when the
    resource is deleted; ``SourceMarkers`` are substituted like the CDK's
    handler does. ``Exclude``/``Include`` filters and ``DestinationBucketArn``
    distribution invalidation are not supported (refused in ``check``)."""

    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        for unsupported in ("Exclude", "Include", "DistributionId"):
            if props.get(unsupported):
                raise StsmonError(f"BucketDeployment property {unsupported} is not supported locally")
        buckets, keys = props.get("SourceBucketNames") or [], props.get("SourceObjectKeys") or []
        if len(buckets) != len(keys):
            raise StsmonError("SourceBucketNames and SourceObjectKeys differ in length")
        for bucket, key in zip(buckets, keys):
            if not (is_resolved(bucket) and is_resolved(key)):
                continue
            if ctx.asset_path(bucket, key) is None and not ctx.state.s3_path(f"s3://{bucket}/{key}").exists():
                raise StsmonError(f"source s3://{bucket}/{key} is neither an asset of the assembly nor a local object")

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        self._deploy(ctx, props)
        return HandlerResult(f"aws.cdk.s3deployment.{_uuid(ctx, logical_id)}", {})

    def update(self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource) -> HandlerResult:
        old_dest = self._destination(ctx, previous.properties)
        self._deploy(ctx, props)
        if old_dest != self._destination(ctx, props) and not _bool(previous.properties.get("RetainOnDelete"), True):
            self._remove(old_dest)
        return HandlerResult(previous.physical_id, {})

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        if not _bool(previous.properties.get("RetainOnDelete"), True):
            self._remove(self._destination(ctx, previous.properties))

    @staticmethod
    def _destination(ctx: DeployContext, props: dict[str, Any]) -> Path:
        prefix = str(props.get("DestinationBucketKeyPrefix") or "")
        return ctx.state.s3_path(f"s3://{props['DestinationBucketName']}/{prefix}")

    @staticmethod
    def _remove(folder: Path) -> None:
        if folder.is_dir():
            shutil.rmtree(folder)

    def _deploy(self, ctx: DeployContext, props: dict[str, Any]) -> None:
        dest = self._destination(ctx, props)
        dest.parent.mkdir(parents=True, exist_ok=True)
        extract = _bool(props.get("Extract"), True)
        markers = props.get("SourceMarkers") or [{} for _ in props.get("SourceObjectKeys") or []]
        staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.deploy-"))
        try:
            for bucket, key, marker in zip(props["SourceBucketNames"], props["SourceObjectKeys"], markers):
                source = ctx.asset_path(bucket, key)
                obj = ctx.state.s3_path(f"s3://{bucket}/{key}")
                if not extract:
                    shutil.copyfile(source if source and source.is_file() else obj, staging / PurePosixPath(key).name)
                elif source is not None and source.is_dir():
                    shutil.copytree(source, staging, dirs_exist_ok=True)
                else:
                    with zipfile.ZipFile(source if source is not None else obj) as zf:
                        _safe_extract(zf, staging)
                if marker:
                    _substitute_markers(staging, marker)
            if _bool(props.get("Prune"), True) or not dest.exists():
                old = None
                if dest.exists():
                    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                    os.replace(dest, old)
                os.replace(staging, dest)
                if old is not None:
                    shutil.rmtree(old)
            else:
                shutil.copytree(staging, dest, dirs_exist_ok=True)
            ctx.echo(f"{ctx.stack_name}: deployed {sum(1 for p in dest.rglob('*') if p.is_file())} file(s) to s3://{props['DestinationBucketName']}/{props.get('DestinationBucketKeyPrefix') or ''}")
        finally:
            if staging.exists():
                shutil.rmtree(staging)


def _substitute_markers(folder: Path, markers: dict[str, Any]) -> None:
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        new = text
        for marker, value in markers.items():
            new = new.replace(marker, str(value))
        if new != text:
            path.write_text(new, encoding="utf-8")
