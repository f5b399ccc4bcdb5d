"""The real CDK CLI: `cdk synth` with no credentials and no network, byte-identical on repeat (and to the
in-process synth of tests/stacks/conftest.py); app.py's configuration errors."""

from __future__ import annotations

import filecmp
import json
import os
import runpy
import shutil
import subprocess
import sys

import pytest

from cdk_helpers import REPO_ROOT

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def _unshare_prefix() -> list[str]:
    """``unshare -rn`` (a private network namespace: no network at all) when this machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def _env(subprocess_env: dict) -> dict:
    env = dict(subprocess_env)  # no AWS_* credentials, Python sockets limited to loopback
    env.update(
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_CLI_TELEMETRY="true",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
    )
    for key in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_CONTEXT_JSON"):
        env.pop(key, None)
    return env


def _synth(outdir, env, *context: str):
    if not CDK.is_file():
        pytest.fail(f"{CDK} missing: run ./run.sh setup (npm ci installs the pinned CDK CLI)")
    command = [*_unshare_prefix(), str(CDK), "synth", "--all", "--quiet", "--no-notices", "--output", str(outdir),
               *[arg for c in context for arg in ("-c", c)]]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    return result


def _same_tree(a, b) -> list[str]:
    differences = []
    comparison = filecmp.dircmp(a, b)

    def walk(cmp, prefix=""):
        differences.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        differences.extend(prefix + n for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(comparison)
    return differences


@pytest.mark.slow
def test_cdk_synth_offline_is_byte_identical_on_repeat(dev, tmp_path, subprocess_env):
    """The CLI's `cdk synth` (node, then app.py in a process of its own, the pipeline definitions built in a
    background process) writes byte for byte the assembly of the in-process synth the other tests here read
    (``dev``: another process, folder, time and string-hash seed, the definitions built in-process). So a synth
    is reproducible, and tests/stacks check exactly what the CLI ships. (This compared two CLI synths before;
    one is the fixture the group already builds. tests/pipeline_code/test_definition_build.py compares the
    background and in-process definition builds on their own.)"""
    env = _env(subprocess_env)
    first = tmp_path / "one"
    # Every synth counts as slow (aws-cdk-lib's threshold, 10 s a stack, is what a loaded machine
    # reaches): the assembly must still hold no timing report (cdk.out/performance-counters.json).
    slow = "@aws-cdk/core.slowSynthThreshold=0"
    _synth(first, env, slow)
    assert _same_tree(first, dev.outdir) == []
    assert not list(first.glob("performance-counters.json"))
    # Synthesizing again into a used folder reads the cached definitions
    # (cdk.out/.definitions/) and produces the same bytes.
    snapshot = {p.name: p.read_bytes() for p in first.glob("*.json")}
    (cached,) = (first / ".definitions").glob("*.json")
    _synth(first, env)
    assert {p.name: p.read_bytes() for p in first.glob("*.json")} == snapshot
    assert list((first / ".definitions").glob("*.json")) == [cached]
    manifest = json.loads((first / "manifest.json").read_text())
    stacks = {k for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"}
    assert stacks == {"sts-foundation", "sts-training", "sts-serving", "sts-monitoring"}
    # No warnings left in the assembly (they would carry stack traces with temp paths).
    for stack in stacks:
        metadata = json.loads((first / f"{stack}.metadata.json").read_text())
        assert not [e for entries in metadata.values() for e in entries if e["type"] == "aws:cdk:warning"], stack


def _run_app(env, outdir, context=None):
    env = dict(env)
    if context is not None:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    env["CDK_OUTDIR"] = str(outdir)
    return subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_app_rejects_bad_configuration_with_one_message(subprocess_env, tmp_path, monkeypatch, capsys):
    env = _env(subprocess_env)
    env["DEPLOY_PROFILE"] = "staging"
    result = _run_app(env, tmp_path, {"QUALITY_THRESHOLD": "high", "CAPTURE_SAMPLING_PERCENTAGE": 200})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "!!" not in line]
    assert lines[0] == "error: invalid configuration:"
    assert "  QUALITY_THRESHOLD='high' (-c): must be a number" in lines
    # Parse errors stop before range checks; the profile is reported with them once values parse.
    # (app.py run as __main__ in this process: the same code and environment without a second
    # interpreter and jsii kernel; the process above checks what the CLI sees of a failure.)
    for key in ("CDK_CONTEXT_JSON", "CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DEPLOY_PROFILE", "staging")
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO_ROOT / "app.py"), run_name="__main__")
    env_only = capsys.readouterr()
    assert "DEPLOY_PROFILE='staging' (environment): must be one of dev, prod" in env_only.err
    assert exited.value.code == 2 and list(tmp_path.iterdir()) == []  # nothing written


def test_every_resource_type_in_the_assembly_deploys_locally(dev):
    """The local runtime deploys this assembly (the default configuration; the
    model-monitor backend is AWS-only): a type the CDK app starts to emit (e.g.
    the EventInvokeConfig of a function without retries) needs a local meaning,
    or `stsmon deploy` refuses the stack."""
    from stsmon.resource_handlers import handler_for

    built = dev
    missing = sorted({
        (kind, res["Type"])
        for kind in ("foundation", "training", "serving", "monitoring")
        for res in built.template(kind)["Resources"].values()
        if handler_for(res["Type"]) is None
    })
    assert missing == []
