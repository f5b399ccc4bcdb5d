"""`stsmon synth`: the CDK CLI invocation (the real synth runs in test_train's end-to-end test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stsmon.commands import synth
from stsmon.errors import StsmonError, UsageError


def test_argv_is_quiet_and_passes_context_through(tmp_path):
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "cdk").write_text("")
    argv = synth.synth_argv(tmp_path, ("QUALITY_THRESHOLD=0.8", "BASE_JOB_PREFIX=x"), Path("/tmp/out"), ("sts-training",))
    assert argv == [
        str(tmp_path / "node_modules" / ".bin" / "cdk"),
        "synth", "--quiet", "--no-notices", "--no-version-reporting",
        "-c", "QUALITY_THRESHOLD=0.8", "-c", "BASE_JOB_PREFIX=x",
        "--output", "/tmp/out", "sts-training",
    ]
    with pytest.raises(UsageError, match="KEY=VALUE"):
        synth.synth_argv(tmp_path, ("novalue",), None, ())


def test_environment_silences_telemetry_and_node_warnings():
    assert synth.CDK_ENV["CDK_DISABLE_CLI_TELEMETRY"] == "true"
    assert synth.CDK_ENV["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] == "1"


def test_outside_a_project_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no cdk.json"):
        synth.run_synth(tmp_path)


def test_a_failing_cdk_is_reported(tmp_path, monkeypatch):
    (tmp_path / "cdk.json").write_text("{}")
    fake = tmp_path / "node_modules" / ".bin" / "cdk"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'synth exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(StsmonError, match="cdk synth failed \\(exit code 3\\)"):
        synth.run_synth(tmp_path)
