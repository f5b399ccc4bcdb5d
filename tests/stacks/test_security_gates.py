"""Security gates on the synthesized templates: cdk-nag (AwsSolutions, NIST 800-53
rev5), cfn-lint and checkov, each with zero unacknowledged findings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdk_helpers import REPO_ROOT
from stacks.nag import acknowledge, skip_checkov

# cfn-lint checks we do not apply, each with its reason:
CFN_LINT_IGNORED = {
    # CDK's Lambda construct adds an explicit DependsOn on its role next to
    # the GetAtt of that role; redundant, harmless, and not ours to change.
    "W3005",
}


def _report_violations(outdir: Path) -> list:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]


def test_nag_packs_report_nothing_unacknowledged(dev, prod):
    # Both fixtures synthesized with the AwsSolutions and NIST 800-53 rev5
    # packs; a finding would have failed the synth. The report agrees.
    assert _report_violations(dev.outdir) == []
    assert _report_violations(prod.outdir) == []


def test_every_acknowledgement_carries_a_reason(dev):
    acknowledged = {}
    for stack in dev.templates:
        metadata = json.loads((dev.outdir / f"{stack}.metadata.json").read_text())
        for path, entries in metadata.items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        acknowledged[(path, rule)] = reason
    assert len(acknowledged) >= 30
    assert all(len(reason) >= 20 for reason in acknowledged.values())
    rules = {rule.split("::", 1)[-1] for _, rule in acknowledged}
    assert "NIST.800.53.R5-LambdaInsideVPC" in rules and any(r.startswith("AwsSolutions-IAM5[") for r in rules)


def test_nag_fails_the_synth_on_an_unacknowledged_finding(tmp_path):
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Bare", env=cdk.Environment(account="000000000000", region="us-east-1"))
    s3.Bucket(stack, "Plain")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="(?s)ValidationFailed.*AwsSolutions-S1"):
        app.synth()
    rules = {v["ruleName"] for v in _report_violations(tmp_path)}
    assert "AwsSolutions-S1" in rules  # no server access logs


def test_acknowledgements_and_skips_need_a_real_reason():
    import aws_cdk as cdk

    stack = cdk.Stack(cdk.App(), "S")
    resource = cdk.CfnResource(stack, "R", type="AWS::SNS::Topic")
    with pytest.raises(ValueError, match="real reason"):
        acknowledge(resource, "AwsSolutions-SNS2", "ok")
    with pytest.raises(ValueError, match="real reason"):
        skip_checkov(resource, "CKV_AWS_26", "because")


@pytest.mark.slow
def test_cfn_lint_is_clean(dev, prod):
    templates = [str(p) for synth in (dev, prod) for p in sorted(synth.outdir.glob("*.template.json"))]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--ignore-checks", *sorted(CFN_LINT_IGNORED), "--", *templates],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def _checkov() -> str:
    for candidate in (shutil.which("checkov"), REPO_ROOT / ".venv-tools/bin/checkov", "/tmp/venvtools/bin/checkov"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("checkov not found: run ./run.sh setup --dev (it installs .venv-tools/bin/checkov)")


@pytest.mark.slow
def test_checkov_is_clean_and_every_skip_is_commented(dev, prod, tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    skips = []
    for name, synth in (("dev", dev), ("prod", prod)):
        for path in synth.outdir.glob("*.template.json"):
            shutil.copy(path, folder / f"{name}-{path.name}")
            for resource in json.loads(path.read_text())["Resources"].values():
                skips += resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", LOG_LEVEL="WARNING")
    result = subprocess.run(
        [_checkov(), "-d", str(folder), "--framework", "cloudformation", "--skip-download", "--quiet", "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [(f["check_id"], f["resource"], f["file_path"]) for r in reports for f in r["results"]["failed_checks"]]
    assert failed == [], result.stderr[-2000:]
    assert result.returncode == 0
    assert sum(r["summary"]["passed"] for r in reports) > 200
    assert skips and all(len(skip["comment"]) >= 20 for skip in skips)
