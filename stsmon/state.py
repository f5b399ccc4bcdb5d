"""Layout of the local state folder (``.stsmon/`` by default).

Everything the local runtime keeps lives under one folder so that
``stsmon cleanup`` can remove it and nothing else. See docs/CONTRACTS.md §4.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import UsageError

#: Environment variable that overrides the default state folder.
STATE_DIR_ENV = "STSMON_HOME"
DEFAULT_STATE_DIRNAME = ".stsmon"


def default_state_dir(cwd: Path | None = None) -> Path:
    """``$STSMON_HOME`` if set, else ``.stsmon`` in the current folder."""
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (cwd or Path.cwd()).resolve() / DEFAULT_STATE_DIRNAME


@dataclass(frozen=True)
class StateDir:
    """Paths inside one local state folder. Creating it creates nothing on disk."""

    root: Path

    @property
    def s3_root(self) -> Path:
        return self.root / "s3"

    @property
    def deployments(self) -> Path:
        return self.root / "deployments"

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.sqlite"

    @property
    def executions(self) -> Path:
        return self.root / "executions"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints"

    @property
    def scheduler(self) -> Path:
        return self.root / "scheduler"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def s3_path(self, uri: str) -> Path:
        """Local path of an ``s3://bucket/key`` URI (the key may be empty).

        Raises :class:`UsageError` for anything that is not an s3 URI or that
        would escape the bucket folder (``..`` segments).
        """
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise UsageError(f"not an s3:// URI: {uri!r}")
        key = parsed.path.lstrip("/")
        parts = [p for p in key.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise UsageError(f"s3 URI has '.' or '..' segments: {uri!r}")
        return self.s3_root.joinpath(parsed.netloc, *parts)

    def s3_uri(self, path: Path) -> str:
        """Inverse of :meth:`s3_path` for a path under ``s3/``."""
        rel = Path(path).resolve().relative_to(self.s3_root.resolve())
        bucket, *key = rel.parts
        return f"s3://{bucket}/" + "/".join(key)
