"""`stsmon deploy`: the CLI over the local deployer (details in tests/stsmon/localcloud/test_deployer.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

from stsmon import cli as cli_module
from stsmon.aws.runtime import aws_deploy_argv


def write_assembly(root: Path, bucket_name: str = "sts-artifacts", extra: dict | None = None) -> Path:
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket_name}},
            **(extra or {}),
        },
        "Outputs": {"ArtifactBucketName": {"Value": {"Ref": "Bucket"}}},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "sts-foundation.template.json").write_text(json.dumps(template))
    (root / "manifest.json").write_text(json.dumps({"artifacts": {"sts-foundation": {
        "type": "aws:cloudformation:stack", "environment": "aws://unknown-account/eu-west-1",
        "properties": {"templateFile": "sts-foundation.template.json"}}}}))
    return root


def run(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_module.main(args)
        return code, out.getvalue(), err.getvalue()
    finally:
        os.chdir(old)


def test_deploy_then_redeploy_with_a_change(tmp_path):
    state = tmp_path / "state"
    write_assembly(tmp_path / "cdk.out")
    code, out, err = run(["deploy", "--state-dir", str(state)], tmp_path)
    assert code == 0, err
    assert "[+] AWS::S3::Bucket Bucket" in out and "sts-foundation.ArtifactBucketName = sts-artifacts" in out
    assert (state / "s3" / "sts-artifacts").is_dir()

    write_assembly(tmp_path / "cdk.out", "sts-artifacts-2")
    code, out, _ = run(["deploy", "--state-dir", str(state), "--dry-run"], tmp_path)
    assert code == 0 and "[~] AWS::S3::Bucket Bucket (BucketName)" in out and "checked" in out
    assert not (state / "s3" / "sts-artifacts-2").exists()

    code, out, _ = run(["deploy", "--state-dir", str(state)], tmp_path)
    assert code == 0 and "updating Bucket" in out
    assert (state / "s3" / "sts-artifacts-2").is_dir() and not (state / "s3" / "sts-artifacts").exists()


def test_unsupported_type_fails_with_one_line_and_exit_code(tmp_path):
    write_assembly(tmp_path / "cdk.out", extra={"Q": {"Type": "AWS::SQS::Queue", "Properties": {}}})
    code, out, err = run(["deploy", "--state-dir", str(tmp_path / "state")], tmp_path)
    assert code == 1
    assert err.strip() == "Error: stack sts-foundation: resource type(s) not supported locally: AWS::SQS::Queue (Q)"
    assert not (tmp_path / "state" / "deployments" / "sts-foundation.json").exists()


def test_no_assembly_says_synth_first(tmp_path):
    code, _, err = run(["deploy", "--state-dir", str(tmp_path / "state")], tmp_path)
    assert code == 3 and "run `stsmon synth` first" in err


def test_aws_target_runs_cdk_deploy_on_the_same_assembly(tmp_path):
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "cdk").write_text("")
    argv = aws_deploy_argv(tmp_path, Path("cdk.out"), (), False)
    assert argv[1:] == ["deploy", "--app", "cdk.out", "--no-notices", "--require-approval", "broadening", "--all"]
    assert aws_deploy_argv(tmp_path, Path("cdk.out"), ("sts-serving",), True)[-2:] == ["--exclusively", "sts-serving"]
