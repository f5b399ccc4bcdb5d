"""``stsmon doctor``: checks, one line each, with what to do when one fails.

A check is ``ok``, ``warn`` (works, with a caveat, or could not be verified:
the line says which), ``fail`` (the flow will break here: the line says how to
fix it) or ``skip`` (needs something an earlier check found missing). Only a
``fail`` makes ``doctor`` exit non-zero.

This module holds the check type, the rendering and the local checks
(``--target local``); the AWS checks are in ``stsmon/aws/preflight.py``.
Everything the checks look at comes in as arguments: the CLI gathers it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
STATUSES = (OK, WARN, FAIL, SKIP)


@dataclass(frozen=True)
class Check:
    """One preflight result: ``name`` (what was checked), ``status``, ``detail``
    (what was found) and ``fix`` (what to do; empty when nothing is needed)."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")

    def line(self, width: int = 28) -> str:
        label = {OK: "ok", WARN: "WARN", FAIL: "FAIL", SKIP: "skip"}[self.status]
        text = f"{label:<5} {self.name:<{width}} {self.detail}"
        return f"{text} -> {self.fix}" if self.fix else text


def render(checks: Iterable[Check]) -> list[str]:
    """One line per check, then a summary line."""
    checks = list(checks)
    width = max((len(c.name) for c in checks), default=10)
    lines = [c.line(width) for c in checks]
    counts = {s: sum(1 for c in checks if c.status == s) for s in STATUSES}
    lines.append(f"{len(checks)} checks: {counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failed"
                 + (f", {counts[SKIP]} skipped" if counts[SKIP] else ""))
    return lines


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


# --------------------------------------------------------------------------
# Local checks (--target local): what `./run.sh demo` needs on this machine.

MIN_PYTHON = (3, 11)
MIN_NODE = 20
#: Free disk space the local flow needs: the venvs are already installed; a
#: demo's state folder (models, capture, reports) and cdk.out stay well under 1 GiB.
MIN_FREE_BYTES = 1 << 30
WANT_FREE_BYTES = 2 << 30


def check_python(version: tuple[int, int, int]) -> Check:
    text = ".".join(map(str, version))
    if tuple(version[:2]) >= MIN_PYTHON:
        return Check("python", OK, f"Python {text}")
    return Check("python", FAIL, f"Python {text}", f"install Python {'.'.join(map(str, MIN_PYTHON))}+")


def check_sklearn(version: str | None) -> Check:
    """scikit-learn 1.9.*: the SageMaker image 1.9-0 loads what the local runtime trains."""
    if version is None:
        return Check("scikit-learn", FAIL, "not installed", "run ./run.sh setup")
    if version.startswith("1.9."):
        return Check("scikit-learn", OK, f"{version} (the 1.9-0 image's scikit-learn line)")
    return Check("scikit-learn", FAIL, f"{version}: models would not load in the 1.9-0 image",
                 "pip install -r requirements.txt (pins scikit-learn 1.9.*)")


def node_version(run: Callable[[list[str]], str] | None = None) -> str | None:
    """``node --version`` (``v20.11.1``), or None when node is not on PATH."""
    node = shutil.which("node")
    if node is None:
        return None
    if run is None:
        def run(argv: list[str]) -> str:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    return run([node, "--version"]).strip() or None


def check_node(version: str | None) -> Check:
    if version is None:
        return Check("node", FAIL, "node not found on PATH", f"install Node.js {MIN_NODE}+ (the CDK CLI runs on it)")
    match = re.match(r"v?(\d+)", version)
    major = int(match.group(1)) if match else 0
    if major >= MIN_NODE:
        return Check("node", OK, f"Node.js {version}")
    return Check("node", FAIL, f"Node.js {version}", f"install Node.js {MIN_NODE}+")


def check_cdk_cli(project: Path) -> Check:
    """The pinned CDK CLI in node_modules, at the version package.json pins."""
    import json

    try:
        pinned = json.loads((project / "package.json").read_text())["devDependencies"]["aws-cdk"]
    except (OSError, ValueError, KeyError):
        return Check("cdk cli", FAIL, f"no CDK CLI pin in {project / 'package.json'}",
                     "run stsmon from the project folder")
    if not (project / "node_modules" / ".bin" / "cdk").is_file():
        return Check("cdk cli", FAIL, f"aws-cdk {pinned} is not installed in node_modules", "run ./run.sh setup (npm ci)")
    try:
        installed = json.loads((project / "node_modules" / "aws-cdk" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        installed = "unknown"
    if installed != pinned:
        return Check("cdk cli", FAIL, f"aws-cdk {installed} installed, package.json pins {pinned}", "npm ci")
    return Check("cdk cli", OK, f"aws-cdk {installed} (node_modules/.bin/cdk)")


def check_disk(path: Path, free_bytes: int) -> Check:
    gib = free_bytes / (1 << 30)
    if free_bytes < MIN_FREE_BYTES:
        return Check("disk", FAIL, f"{gib:.1f} GiB free at {path}", "free at least 1 GiB (or use --state-dir elsewhere)")
    if free_bytes < WANT_FREE_BYTES:
        return Check("disk", WARN, f"{gib:.1f} GiB free at {path}: enough for one demo, little for more runs",
                     "free 2 GiB or more")
    return Check("disk", OK, f"{gib:.1f} GiB free at {path}")


def check_corpus(msrp_dir: str | None, cache: Path) -> Check:
    """The MSRP corpus: $STSMON_MSRP_DIR, else the cache; never downloads (that is `stsmon data fetch`)."""
    from .data import MSRP_DIR_ENV, MsrpError, validate_msrp_dir

    if msrp_dir:
        folder = Path(msrp_dir).expanduser()
        try:
            counts = validate_msrp_dir(folder)
        except MsrpError as exc:
            return Check("corpus", FAIL, f"{MSRP_DIR_ENV}={msrp_dir}: {exc}", f"point {MSRP_DIR_ENV} at the MSRP files")
        return Check("corpus", OK, f"{MSRP_DIR_ENV}: {folder} ({_pairs(counts)})")
    try:
        counts = validate_msrp_dir(cache)
    except MsrpError:
        return Check("corpus", WARN, f"no MSRP corpus in {MSRP_DIR_ENV} or the cache {cache}",
                     f"`stsmon data fetch` downloads it once (network), or set {MSRP_DIR_ENV}, or use --input-data")
    return Check("corpus", OK, f"cached in {cache} ({_pairs(counts)})")


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {rows} pairs" for name, rows in counts.items())


def check_assembly_local(assembly: Path) -> Check:
    if (assembly / "manifest.json").is_file():
        return Check("cloud assembly", OK, f"{assembly}")
    return Check("cloud assembly", WARN, f"no {assembly} yet", "stsmon synth (stsmon demo does it for you)")
