"""Build both pipeline definitions in a separate process.

``python -m pipeline_code.build REQUEST`` takes ``{"config": {...}, "code_prefix": "..."}``
(JSON) as its argument and writes ``{"training": {...}, "monitoring": {...}}`` on stdout.
The CDK app starts it before it builds its stacks (:class:`BackgroundDefinitions`):
importing the SageMaker SDK costs seconds of CPU, and in its own process that
runs on another core while aws-cdk-lib loads and the constructs are built,
instead of after them. The process imports placeholders for the packages the
SDK imports but a definition never uses (``pipeline_code.unused_imports``),
and sets the SDK's offline environment for
itself only (``pipeline_code.sdk``); the parent's environment is untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from stscontracts.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
#: What the definitions depend on besides the request: the builder's code and the SDK.
_SOURCES = (*sorted((REPO_ROOT / "pipeline_code").glob("*.py")), *sorted((REPO_ROOT / "stscontracts").glob("*.py")))
_PACKAGES = ("sagemaker", "sagemaker-core", "sagemaker-train", "sagemaker-serve", "sagemaker-mlops", "boto3", "botocore")


def config_to_json(cfg: Config) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "sources"}


def cache_key(cfg: Config, code_prefix: str) -> str:
    """SHA-256 of everything a definition depends on: the configuration, the
    code prefix, the builder's sources and the exact SDK versions."""
    digest = hashlib.sha256(json.dumps({"config": config_to_json(cfg), "code_prefix": code_prefix}, sort_keys=True).encode())
    for path in _SOURCES:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for package in _PACKAGES:
        digest.update(f"{package}=={metadata.version(package)}".encode())
    return digest.hexdigest()


def definitions(cfg: Config, code_prefix: str, cache_dir: Path | None = None, *, background: bool = True) -> "DefinitionSource":
    """The definitions for ``cfg``: from ``cache_dir`` when an identical build
    is there, else built (in a background process, or here) and stored there.

    The cache is content-addressed (:func:`cache_key`), so a hit returns
    exactly the bytes a new build would produce; ``cdk synth`` keeps it in
    ``cdk.out/.definitions/``.
    """
    path = cache_dir / f"{cache_key(cfg, code_prefix)}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        return CachedDefinitions(path, code_prefix)
    source = BackgroundDefinitions(cfg, code_prefix) if background else InProcessDefinitions(cfg, code_prefix)
    source.cache_path = path
    return source


def _store(path: Path | None, result: dict[str, dict]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, sort_keys=False))
    os.replace(tmp, path)


def build_all(cfg: Config, code_prefix: str) -> dict[str, dict]:
    from .monitoring import build_monitoring_definition
    from .training import build_training_definition

    return {
        "training": build_training_definition(cfg, code_prefix),
        "monitoring": build_monitoring_definition(cfg, code_prefix),
    }


class DefinitionSource(Protocol):
    """Where the stacks get the definitions from (``"training"``, ``"monitoring"``)."""

    code_prefix: str

    def get(self, name: str) -> dict: ...


class CachedDefinitions:
    """Definitions read from an earlier identical build."""

    def __init__(self, path: Path, code_prefix: str) -> None:
        self.path, self.code_prefix = path, code_prefix
        self._result: dict[str, dict] | None = None

    def get(self, name: str) -> dict:
        if self._result is None:
            self._result = json.loads(self.path.read_text())
        return self._result[name]


class InProcessDefinitions:
    """Definitions built in this process, on first use."""

    cache_path: Path | None = None

    def __init__(self, cfg: Config, code_prefix: str) -> None:
        self.cfg, self.code_prefix = cfg, code_prefix
        self._result: dict[str, dict] | None = None

    def get(self, name: str) -> dict:
        if self._result is None:
            self._result = build_all(self.cfg, self.code_prefix)
            _store(self.cache_path, self._result)
        return self._result[name]


class BackgroundDefinitions:
    """Definitions built by ``python -m pipeline_code.build``, started now,
    collected on first use (at synth)."""

    cache_path: Path | None = None

    def __init__(self, cfg: Config, code_prefix: str) -> None:
        self.code_prefix = code_prefix
        request = json.dumps({"config": config_to_json(cfg), "code_prefix": code_prefix})
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pipeline_code.build", request],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._result: dict[str, dict] | None = None

    def get(self, name: str) -> dict:
        if self._result is None:
            stdout, stderr = self._process.communicate()
            if self._process.returncode != 0:
                raise RuntimeError(f"building the pipeline definitions failed:\n{stderr.strip()}")
            self._result = json.loads(stdout)
            _store(self.cache_path, self._result)
        return self._result[name]


def main(argv: list[str] | None = None) -> int:
    from .unused_imports import skip_unused_imports

    skip_unused_imports()  # this process builds definitions only (see pipeline_code/unused_imports.py)
    (argument,) = sys.argv[1:] if argv is None else argv
    request = json.loads(argument)
    cfg = Config(**request["config"])
    json.dump(build_all(cfg, request["code_prefix"]), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
