"""Read a synthesized CDK cloud assembly (``cdk.out``): stacks, templates, assets.

Only what the local deployer needs: the manifest's stack artifacts (template
file, environment, dependencies), each stack's asset manifest (file assets:
source path, packaging, destination bucket/key) and publishing those assets
into the local asset bucket, like ``cdk-assets`` does on AWS.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotDeployedError, StsmonError
from ..state import StateDir
from . import DEFAULT_REGION, LocalEnvironment

STACK_ARTIFACT = "aws:cloudformation:stack"
ASSET_MANIFEST_ARTIFACT = "cdk:asset-manifest"
NESTED_ASSEMBLY_ARTIFACT = "cdk:cloud-assembly"


class AssemblyError(StsmonError):
    """The cloud assembly is missing or malformed."""

    exit_code = 2


@dataclass(frozen=True)
class FileAsset:
    """One file asset: its source in cdk.out and where it is published."""

    asset_id: str
    source: Path
    packaging: str  # "file" or "zip"
    bucket_template: str  # may hold ${AWS::AccountId} / ${AWS::Region} / ${AWS::Partition}
    key: str

    def bucket(self, env: LocalEnvironment) -> str:
        return substitute_placeholders(self.bucket_template, env)


@dataclass(frozen=True)
class StackArtifact:
    """One stack of the assembly."""

    artifact_id: str
    stack_name: str
    template_path: Path
    region: str | None
    dependencies: tuple[str, ...]  # artifact ids of stacks this one depends on
    assets: tuple[FileAsset, ...] = ()
    docker_images: tuple[str, ...] = ()

    def template(self) -> dict[str, Any]:
        try:
            return json.loads(self.template_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AssemblyError(f"cannot read the template of stack {self.stack_name}: {self.template_path}: {exc}") from None


def substitute_placeholders(text: str, env: LocalEnvironment) -> str:
    """The cdk-assets placeholders ``${AWS::AccountId}`` etc. with local values."""
    return (
        text.replace("${AWS::AccountId}", env.account)
        .replace("${AWS::Region}", env.region)
        .replace("${AWS::Partition}", env.partition)
    )


@dataclass
class Assembly:
    """A loaded cloud assembly. Use :meth:`load`."""

    root: Path
    stacks: dict[str, StackArtifact] = field(default_factory=dict)  # by artifact id

    @classmethod
    def load(cls, root: Path | str) -> Assembly:
        root = Path(root)
        manifest_path = root / "manifest.json"
        if not manifest_path.is_file():
            raise NotDeployedError(f"no cloud assembly at {root} (manifest.json missing): run `stsmon synth` first")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AssemblyError(f"{manifest_path}: not a readable cloud assembly manifest: {exc}") from None
        artifacts: dict[str, Any] = manifest.get("artifacts") or {}
        assembly = cls(root=root)
        stack_ids = {k for k, a in artifacts.items() if a.get("type") == STACK_ARTIFACT}
        for art_id, art in artifacts.items():
            if art.get("type") == NESTED_ASSEMBLY_ARTIFACT:
                raise AssemblyError(
                    f"{manifest_path}: nested cloud assemblies (CDK Stages, artifact {art_id}) are not supported locally"
                )
            if art.get("type") != STACK_ARTIFACT:
                continue
            props = art.get("properties") or {}
            template = props.get("templateFile")
            if not template:
                raise AssemblyError(f"{manifest_path}: stack artifact {art_id} has no templateFile")
            deps = tuple(d for d in art.get("dependencies") or () if d in stack_ids)
            assets: list[FileAsset] = []
            docker: list[str] = []
            for dep in art.get("dependencies") or ():
                dep_art = artifacts.get(dep) or {}
                if dep_art.get("type") == ASSET_MANIFEST_ARTIFACT:
                    files, images = _read_asset_manifest(root, root / dep_art["properties"]["file"])
                    assets.extend(files)
                    docker.extend(images)
            assembly.stacks[art_id] = StackArtifact(
                artifact_id=art_id,
                stack_name=props.get("stackName") or art_id,
                template_path=root / template,
                region=_region_of(art.get("environment", "")),
                dependencies=deps,
                assets=tuple(assets),
                docker_images=tuple(docker),
            )
        if not assembly.stacks:
            raise AssemblyError(f"{manifest_path}: the assembly has no stacks")
        return assembly

    # -- selection ----------------------------------------------------------

    def find(self, name: str) -> StackArtifact:
        """A stack by artifact id or stack name."""
        for stack in self.stacks.values():
            if name in (stack.artifact_id, stack.stack_name):
                return stack
        known = ", ".join(s.stack_name for s in self.ordered())
        raise AssemblyError(f"no stack named {name!r} in {self.root} (stacks: {known})")

    def ordered(self, names: list[str] | None = None, *, with_dependencies: bool = True) -> list[StackArtifact]:
        """Stacks in dependency order: all of them, or ``names`` (plus what they
        depend on unless ``with_dependencies`` is False)."""
        wanted: list[str] = []
        if names:
            for name in names:
                wanted.append(self.find(name).artifact_id)
        else:
            wanted = list(self.stacks)
        selected: set[str] = set()

        def add(aid: str) -> None:
            if aid in selected:
                return
            selected.add(aid)
            if with_dependencies:
                for dep in self.stacks[aid].dependencies:
                    add(dep)

        for aid in wanted:
            add(aid)
        order: list[str] = []
        visiting: set[str] = set()

        def visit(aid: str) -> None:
            if aid in order:
                return
            if aid in visiting:
                raise AssemblyError(f"stack dependency cycle through {aid}")
            visiting.add(aid)
            for dep in sorted(self.stacks[aid].dependencies):
                visit(dep)
            visiting.discard(aid)
            order.append(aid)

        for aid in sorted(self.stacks):
            visit(aid)
        return [self.stacks[a] for a in order if a in selected]

    # -- assets -------------------------------------------------------------

    def all_assets(self) -> list[FileAsset]:
        seen: dict[tuple[str, str], FileAsset] = {}
        for stack in self.stacks.values():
            for asset in stack.assets:
                seen[(asset.bucket_template, asset.key)] = asset
        return list(seen.values())

    def asset_source(self, bucket: str, key: str, env: LocalEnvironment) -> Path | None:
        """The cdk.out file or folder published as ``s3://bucket/key``, if any."""
        for asset in self.all_assets():
            if asset.key == key and asset.bucket(env) == bucket:
                return asset.source
        return None


def _region_of(environment: str) -> str | None:
    # "aws://unknown-account/us-east-1" or "aws://123456789012/unknown-region"
    parts = environment.removeprefix("aws://").split("/")
    if len(parts) == 2 and parts[1] and not parts[1].startswith("unknown-"):
        return parts[1]
    return None


def _read_asset_manifest(root: Path, path: Path) -> tuple[list[FileAsset], list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AssemblyError(f"cannot read asset manifest {path}: {exc}") from None
    files: list[FileAsset] = []
    for asset_id, entry in (data.get("files") or {}).items():
        source = entry.get("source") or {}
        if "path" not in source:
            raise AssemblyError(f"{path}: asset {asset_id} is built by a command (executable), not supported locally")
        for dest in (entry.get("destinations") or {}).values():
            files.append(
                FileAsset(
                    asset_id=asset_id,
                    source=root / source["path"],
                    packaging=source.get("packaging", "file"),
                    bucket_template=dest["bucketName"],
                    key=dest["objectKey"],
                )
            )
    return files, list((data.get("dockerImages") or {}).keys())


def publish_assets(stack: StackArtifact, state: StateDir, env: LocalEnvironment) -> list[str]:
    """Publish a stack's file assets into the local asset bucket (``s3/{bucket}/{key}``),
    like ``cdk-assets``: a ``file`` asset is copied, a ``zip`` asset (a folder)
    is zipped. Content-addressed keys: an object already present is kept.
    Returns the URIs published now."""
    published: list[str] = []
    for asset in stack.assets:
        target = state.s3_path(f"s3://{asset.bucket(env)}/{asset.key}")
        if target.exists():
            continue
        if not asset.source.exists():
            raise AssemblyError(f"asset {asset.asset_id} of stack {stack.stack_name}: {asset.source} is missing")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".publish-")
        os.close(fd)
        try:
            if asset.packaging == "zip" and asset.source.is_dir():
                _zip_folder(asset.source, Path(tmp))
            else:
                shutil.copyfile(asset.source, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        published.append(f"s3://{asset.bucket(env)}/{asset.key}")
    return published


def _zip_folder(folder: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())


def local_environment(stack: StackArtifact, region: str | None = None) -> LocalEnvironment:
    """The local environment for a stack: its synthesized region (else ``region``,
    else us-east-1) and the local account."""
    return LocalEnvironment(region=stack.region or region or DEFAULT_REGION)
