"""`stsmon doctor`: each preflight check's pass and fail paths against botocore
Stubber (the AWS boundary), and the thin CLI with click's CliRunner.

What AWS answers here is botocore's service model (Stubber validates every
request and response against it); the meaning of the answers is documented
in stsmon/aws/preflight.py (verified vs assumed)."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from stsmon import cli as cli_module
from stsmon import preflight as p
from stsmon.aws import preflight as ap
from stsmon.aws.environment import AwsEnvironment
from stscontracts.config import load_config

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ENV = AwsEnvironment(REGION, "AWS_REGION")
STATUSES = {"ok": p.OK, "warn": p.WARN, "fail": p.FAIL}


_SESSION = botocore.session.get_session()  # one session: service models load once


def client(service: str, region: str = REGION):
    return _SESSION.create_client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="y")


def config(**overrides):
    context = {"CDK_DEFAULT_REGION": REGION, **{k.upper(): v for k, v in overrides.items()}}
    return load_config(context, {})


def assembly(folder: Path, *, env=f"aws://{ACCOUNT}/{REGION}", version=6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    props = {"requiresBootstrapStackVersion": version, "bootstrapStackVersionSsmParameter": "/cdk-bootstrap/hnb659fds/version"}
    artifacts = {
        "sts-foundation": {"type": "aws:cloudformation:stack", "environment": env, "displayName": "sts-foundation",
                           "properties": {**props, "lookupRole": {"requiresBootstrapStackVersion": 8}}},
        "sts-foundation.assets": {"type": "cdk:asset-manifest", "properties": dict(props)},
        "Tree": {"type": "cdk:tree"},
    }
    (folder / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return folder


# -- credentials ---------------------------------------------------------------------------


def test_credentials_ok_names_account_and_principal():
    sts = client("sts")
    with Stubber(sts) as stub:
        stub.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ana", "UserId": "AIDA"}, {})
        check, identity = ap.credentials_check(sts, AwsEnvironment(REGION, "x", "eu", "AWS_PROFILE"))
    assert check.status == p.OK and identity["Account"] == ACCOUNT
    assert check.detail == f"account {ACCOUNT} as arn:aws:iam::{ACCOUNT}:user/ana (profile eu (AWS_PROFILE))"


def test_expired_credentials_fail_with_the_login_to_run():
    sts = client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", service_error_code="ExpiredToken",
                              service_message="The security token included in the request is expired")
        check, identity = ap.credentials_check(sts, AwsEnvironment(REGION, "x", "eu", "--profile", True))
    assert (check.status, identity) == (p.FAIL, None)
    assert "ExpiredToken" in check.detail and check.fix == "refresh them: aws sso login --profile eu"


def test_no_credentials_fail(monkeypatch):
    """A real client with nothing to sign with (the suite has no AWS credentials):
    botocore raises NoCredentialsError before any request."""
    sts = botocore.session.get_session().create_client("sts", region_name=REGION)
    check, identity = ap.credentials_check(sts, ENV)
    assert (check.status, identity) == (p.FAIL, None)
    assert check.detail.startswith("no AWS credentials found") and "aws configure" in check.fix


# -- region and assembly --------------------------------------------------------------------


def test_region_line_names_its_source_and_a_pinned_region():
    known = ap.sagemaker_regions()
    assert {"us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"} <= known  # botocore's data, all partitions
    ok = ap.region_check(ENV, config(), known)
    assert (ok.status, ok.detail) == (p.OK, f"{REGION} (AWS_REGION)")
    pinned = ap.region_check(ENV, config(cdk_default_region="eu-central-1"), known)
    assert pinned.status == p.OK and pinned.detail.startswith("eu-central-1 (CDK_DEFAULT_REGION from -c; your AWS region is eu-west-1")


def test_a_region_without_sagemaker_warns():
    check = ap.region_check(AwsEnvironment("ap-nowhere-9", "AWS_REGION"), config(cdk_default_region="ap-nowhere-9"),
                            ap.sagemaker_regions())
    assert check.status == p.WARN and "knows no SageMaker endpoint there" in check.detail


def test_assembly_for_this_account_and_region(tmp_path):
    ok = ap.assembly_check(assembly(tmp_path / "a"), REGION, ACCOUNT)
    assert ok.status == p.OK and f"aws://{ACCOUNT}/{REGION}" in ok.detail
    missing = ap.assembly_check(tmp_path / "none", REGION, ACCOUNT)
    assert missing.status == p.WARN and "stsmon synth" in missing.fix
    offline = ap.assembly_check(assembly(tmp_path / "b", env=f"aws://000000000000/{REGION}"), REGION, ACCOUNT)
    assert offline.status == p.FAIL and "aws://000000000000/eu-west-1, not aws://123456789012/eu-west-1" in offline.detail
    elsewhere = ap.assembly_check(assembly(tmp_path / "c", env=f"aws://{ACCOUNT}/us-east-1"), REGION, ACCOUNT)
    assert elsewhere.status == p.FAIL


# -- CDK bootstrap ---------------------------------------------------------------------------


def test_bootstrap_requirement_is_read_from_the_manifest(tmp_path):
    need = ap.bootstrap_requirement(assembly(tmp_path / "a", version=21))
    assert need == ap.BootstrapRequirement(21, "/cdk-bootstrap/hnb659fds/version")
    assert ap.bootstrap_requirement(tmp_path / "none") is None


@pytest.mark.parametrize(("answer", "status", "text"), [
    ("28", "ok", "version 28 (cdk.out requires 6)"),
    ("5", "fail", "version 5, cdk.out requires 6"),
    ("ParameterNotFound", "fail", f"{ACCOUNT}/{REGION} is not bootstrapped (/cdk-bootstrap/hnb659fds/version not found)"),
    ("AccessDeniedException", "warn", "could not read /cdk-bootstrap/hnb659fds/version (AccessDeniedException: ssm:GetParameter)"),
])
def test_bootstrap_version(tmp_path, answer, status, text):
    ssm = client("ssm")
    with Stubber(ssm) as stub:
        if answer.isdigit():
            stub.add_response("get_parameter", {"Parameter": {"Name": "/cdk-bootstrap/hnb659fds/version", "Value": answer,
                                                              "Type": "String"}}, {"Name": "/cdk-bootstrap/hnb659fds/version"})
        else:
            stub.add_client_error("get_parameter", service_error_code=answer, expected_params={"Name": "/cdk-bootstrap/hnb659fds/version"})
        check = ap.bootstrap_check(ssm, assembly(tmp_path / "a"), ACCOUNT, REGION)
    assert check.status == STATUSES[status] and check.detail == text
    if status == "fail":
        assert check.fix.startswith(f"npx cdk bootstrap aws://{ACCOUNT}/{REGION}")


def test_bootstrap_without_an_assembly_warns(tmp_path):
    ssm = client("ssm")
    with Stubber(ssm) as stub:
        stub.add_response("get_parameter", {"Parameter": {"Value": "28"}}, {"Name": "/cdk-bootstrap/hnb659fds/version"})
        check = ap.bootstrap_check(ssm, tmp_path / "none", ACCOUNT, REGION)
    assert check.status == p.WARN and "required version is unknown" in check.detail


# -- service quotas --------------------------------------------------------------------------


def _quota(name: str, value: float, code: str = "L-0001") -> dict:
    return {"ServiceCode": "sagemaker", "QuotaCode": code, "QuotaName": name, "Value": value}


def _stub_quotas(stub, applied: list[dict], defaults: list[dict], *, pages: int = 1) -> None:
    size = max(1, -(-len(applied) // pages))
    chunks = [applied[i:i + size] for i in range(0, len(applied), size)] or [[]]
    for i, chunk in enumerate(chunks):
        params = {"ServiceCode": "sagemaker", "MaxResults": 100, **({"NextToken": f"t{i}"} if i else {})}
        page = {"Quotas": chunk, **({"NextToken": f"t{i + 1}"} if i + 1 < len(chunks) else {})}
        stub.add_response("list_service_quotas", page, params)
    stub.add_response("list_aws_default_service_quotas", {"Quotas": defaults}, {"ServiceCode": "sagemaker", "MaxResults": 100})


def test_quota_needs_per_instance_type_and_use():
    needs = ap.quota_needs(config(endpoint_instance_count=2))
    assert {n: (q.minimum, q.peak) for n, q in needs.items()} == {
        "ml.m5.large for processing job usage": (1, 2),  # training steps and the hourly monitor share it
        "ml.m5.large for training job usage": (1, 1),
        "ml.m5.large for endpoint usage": (2, 4),       # an update runs a second fleet
    }
    split = ap.quota_needs(config(monitoring_instance_type="ml.t3.large"))
    assert split["ml.t3.large for processing job usage"].peak == 1
    assert split["ml.m5.large for processing job usage"].peak == 1


def test_quotas_new_account_defaults_of_zero_fail_with_the_request_command():
    sq = client("service-quotas")
    defaults = [_quota("ml.m5.large for processing job usage", 0, "L-8541302D"),
                _quota("ml.m5.large for training job usage", 0), _quota("ml.m5.large for endpoint usage", 0)]
    with Stubber(sq) as stub:
        _stub_quotas(stub, [], defaults)
        checks = ap.quota_checks(sq, config())
    assert [c.status for c in checks] == [p.FAIL, p.FAIL, p.FAIL]
    assert checks[0].name == "quota ml.m5.large for processing job usage"
    assert checks[0].detail == "0 (AWS default); training pipeline steps + hourly monitor need 1"
    assert "--quota-code L-8541302D --desired-value 2 --region eu-west-1" in checks[0].fix


def test_quotas_applied_values_over_defaults_across_pages():
    sq = client("service-quotas")
    applied = [_quota("ml.c5.xlarge for endpoint usage", 4), _quota("ml.m5.large for processing job usage", 4),
               _quota("ml.m5.large for training job usage", 15), _quota("ml.m5.large for endpoint usage", 1)]
    defaults = [_quota("ml.m5.large for processing job usage", 0), _quota("ml.m5.large for endpoint usage", 0),
                _quota("ml.m5.large for training job usage", 0)]
    with Stubber(sq) as stub:
        _stub_quotas(stub, applied, defaults, pages=2)
        checks = ap.quota_checks(sq, config())
        stub.assert_no_pending_responses()
    assert [(c.status, c.detail.split(";")[0]) for c in checks] == [
        (p.OK, "4 (applied)"), (p.OK, "15 (applied)"), (p.WARN, "1 (applied)")]
    assert "an endpoint update's second fleet" in checks[2].detail


def test_quota_missing_for_an_instance_type_fails():
    sq = client("service-quotas")
    with Stubber(sq) as stub:
        _stub_quotas(stub, [], [_quota("ml.m5.large for processing job usage", 2),
                                _quota("ml.m5.large for training job usage", 2)])
        checks = ap.quota_checks(sq, config(endpoint_instance_type="ml.z9.huge"))
    bad = [c for c in checks if c.status == p.FAIL]
    assert [c.name for c in bad] == ["quota ml.z9.huge for endpoint usage"]
    assert "not offered there" in bad[0].detail


def test_quotas_denied_warn_per_quota():
    sq = client("service-quotas")
    with Stubber(sq) as stub:
        stub.add_client_error("list_service_quotas", service_error_code="AccessDeniedException")
        checks = ap.quota_checks(sq, config())
    assert [c.status for c in checks] == [p.WARN] * 3 and "servicequotas:ListServiceQuotas" in checks[0].detail


# -- images (offline) ---------------------------------------------------------------------


def test_the_sklearn_image_of_the_region_comes_from_the_sdk_table():
    checks = ap.image_checks(config())
    assert [c.status for c in checks] == [p.OK, p.OK]
    # The account of eu-west-1's registry in sagemaker-core's sklearn.json (1.9-0).
    assert checks[1].detail.startswith("141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3")


def test_an_image_not_published_in_the_region_or_an_unknown_version_fails():
    nowhere = ap.image_checks(config(cdk_default_region="ap-nowhere-9"))
    assert [c.status for c in nowhere] == [p.FAIL, p.FAIL] and "not published in ap-nowhere-9" in nowhere[0].detail
    old = ap.image_checks(config(sklearn_image_version="0.1-9"))
    assert old[0].status == p.FAIL and "is not in the sagemaker-core" in old[0].detail and "1.9-0" in old[0].detail


def test_model_monitor_backend_also_checks_its_analyzer_image():
    checks = ap.image_checks(config(monitor_backend="model-monitor", monitor_schedule="cron(0 * ? * * *)"))
    assert checks[-1].name == "image model-monitor" and checks[-1].status == p.OK
    assert "sagemaker-model-monitor-analyzer" in checks[-1].detail


# -- Model Monitor -------------------------------------------------------------------------


def test_model_monitor_is_not_checked_for_the_pipeline_backend():
    check = ap.model_monitor_check(None, config())
    assert check.status == p.OK and "not used" in check.detail


@pytest.mark.parametrize(("schedules", "status"), [(1, "ok"), (0, "warn")])
def test_model_monitor_use_in_the_account(schedules, status):
    sm = client("sagemaker")
    cfg = config(monitor_backend="model-monitor")
    summary = {"MonitoringScheduleName": "s", "MonitoringScheduleArn": "arn:aws:sagemaker:eu-west-1:1:monitoring-schedule/s",
               "CreationTime": "2033-01-01T00:00:00Z", "LastModifiedTime": "2033-01-01T00:00:00Z", "MonitoringScheduleStatus": "Scheduled"}
    with Stubber(sm) as stub:
        stub.add_response("list_monitoring_schedules", {"MonitoringScheduleSummaries": [summary] * schedules}, {"MaxResults": 1})
        stub.add_response("list_model_quality_job_definitions", {"JobDefinitionSummaries": []}, {"MaxResults": 1})
        check = ap.model_monitor_check(sm, cfg)
    assert check.status == STATUSES[status]
    if status == "warn":
        assert "closed Model Monitor to new customers" in check.detail and "MONITOR_BACKEND=pipeline" in check.fix


def test_model_monitor_denied_warns():
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_client_error("list_monitoring_schedules", service_error_code="AccessDeniedException")
        check = ap.model_monitor_check(sm, config(monitor_backend="model-monitor"))
    assert check.status == p.WARN and "could not check" in check.detail


# -- bucket names ----------------------------------------------------------------------------


ARTIFACTS, LOGS = f"sts-artifacts-{ACCOUNT}-{REGION}", f"sts-access-logs-{ACCOUNT}-{REGION}"


def test_bucket_names_are_the_foundation_stacks(repo_root):
    """Same literals as the synthesized foundation template (its snapshot)."""
    template = json.loads((repo_root / "tests/stacks/snapshots/sts-foundation.json").read_text())
    names = {r["Properties"]["BucketName"] for r in template["Resources"].values()
             if r["Type"] == "AWS::S3::Bucket" and isinstance(r["Properties"].get("BucketName"), str)}
    assert names == set(ap.bucket_names("sts", "000000000000", "us-east-1").values())


def _stack(stub, exists: bool):
    if exists:
        stub.add_response("describe_stacks", {"Stacks": [{"StackName": "sts-foundation", "CreationTime": "2033-01-01T00:00:00Z",
                                                          "StackStatus": "CREATE_COMPLETE"}]}, {"StackName": "sts-foundation"})
    else:
        stub.add_client_error("describe_stacks", service_error_code="ValidationError",
                              service_message="Stack with id sts-foundation does not exist", expected_params={"StackName": "sts-foundation"})


def _tags(stub, name: str, owner: str | None):
    if owner is None:
        stub.add_client_error("get_bucket_tagging", service_error_code="NoSuchTagSet", expected_params={"Bucket": name})
    else:
        stub.add_response("get_bucket_tagging", {"TagSet": [{"Key": "aws:cloudformation:stack-name", "Value": owner}]},
                          {"Bucket": name})


def test_free_bucket_names():
    s3, cfn = client("s3"), client("cloudformation")
    with Stubber(s3) as stub:
        for name in (ARTIFACTS, LOGS):
            stub.add_client_error("head_bucket", service_error_code="404", http_status_code=404, expected_params={"Bucket": name})
        checks = ap.bucket_checks(s3, cfn, config(), ACCOUNT)
    assert [(c.name, c.status) for c in checks] == [("artifact bucket", p.OK), ("access-log bucket", p.OK)]
    assert checks[0].detail == f"{ARTIFACTS} is free (sts-foundation creates it)"


def test_buckets_of_the_deployed_stack_are_ours():
    s3, cfn = client("s3"), client("cloudformation")
    with Stubber(s3) as s, Stubber(cfn) as c:
        s.add_response("head_bucket", {}, {"Bucket": ARTIFACTS})
        _tags(s, ARTIFACTS, "sts-foundation")
        _stack(c, True)
        s.add_response("head_bucket", {}, {"Bucket": LOGS})
        _tags(s, LOGS, "sts-foundation")
        checks = ap.bucket_checks(s3, cfn, config(), ACCOUNT)
    assert [c.status for c in checks] == [p.OK, p.OK] and "sts-foundation's own" in checks[0].detail


def test_a_retained_bucket_without_its_stack_fails():
    s3, cfn = client("s3"), client("cloudformation")
    with Stubber(s3) as s, Stubber(cfn) as c:
        s.add_response("head_bucket", {}, {"Bucket": ARTIFACTS})
        _tags(s, ARTIFACTS, "sts-foundation")
        _stack(c, False)
        s.add_client_error("head_bucket", service_error_code="404", http_status_code=404, expected_params={"Bucket": LOGS})
        checks = ap.bucket_checks(s3, cfn, config(), ACCOUNT)
    assert [c.status for c in checks] == [p.FAIL, p.OK]
    assert "left by an earlier sts-foundation" in checks[0].detail and f"aws s3 rb s3://{ARTIFACTS} --force" in checks[0].fix


def test_an_unreadable_bucket_of_the_deployed_stack_warns():
    s3, cfn = client("s3"), client("cloudformation")
    with Stubber(s3) as s, Stubber(cfn) as c:
        s.add_client_error("head_bucket", service_error_code="403", http_status_code=403, expected_params={"Bucket": ARTIFACTS})
        _stack(c, True)
        s.add_response("head_bucket", {}, {"Bucket": LOGS})
        s.add_client_error("get_bucket_tagging", service_error_code="AccessDenied", expected_params={"Bucket": LOGS})
        checks = ap.bucket_checks(s3, cfn, config(), ACCOUNT)
    assert [c.status for c in checks] == [p.WARN, p.WARN]
    assert "s3:ListBucket" in checks[0].detail and "s3:GetBucketTagging) to tell whether it is sts-foundation's" in checks[1].detail


@pytest.mark.parametrize(("answer", "text"), [
    ("untagged", "exists but was not created by sts-foundation"),
    ("other", "exists but was not created by sts-foundation (tagged for someone-else)"),
    ("403", "exists and you may not read it"),
    ("301", "exists in another region"),
])
def test_bucket_names_taken(answer, text):
    s3, cfn = client("s3"), client("cloudformation")
    with Stubber(s3) as s, Stubber(cfn) as c:
        if answer in ("403", "301"):
            s.add_client_error("head_bucket", service_error_code=answer, http_status_code=int(answer), expected_params={"Bucket": ARTIFACTS})
            if answer == "403":
                _stack(c, False)
        else:
            s.add_response("head_bucket", {}, {"Bucket": ARTIFACTS})
            _tags(s, ARTIFACTS, None if answer == "untagged" else "someone-else")
            _stack(c, True)
        s.add_client_error("head_bucket", service_error_code="404", http_status_code=404, expected_params={"Bucket": LOGS})
        checks = ap.bucket_checks(s3, cfn, config(), ACCOUNT)
    assert checks[0].status == p.FAIL and text in checks[0].detail


# -- all checks, and the CLI -------------------------------------------------------------


def _healthy_account(tmp_path: Path) -> dict:
    """Stubbed clients of an account where a first deploy works."""
    clients = {name: client(name) for name in ("sts", "ssm", "service-quotas", "sagemaker", "s3", "cloudformation")}
    stubs = {name: Stubber(c) for name, c in clients.items()}
    stubs["sts"].add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ana", "UserId": "A"}, {})
    stubs["ssm"].add_response("get_parameter", {"Parameter": {"Value": "28"}}, {"Name": "/cdk-bootstrap/hnb659fds/version"})
    _stub_quotas(stubs["service-quotas"], [_quota("ml.m5.large for processing job usage", 4),
                                           _quota("ml.m5.large for training job usage", 2),
                                           _quota("ml.m5.large for endpoint usage", 2)], [])
    for name in (ARTIFACTS, LOGS):
        stubs["s3"].add_client_error("head_bucket", service_error_code="404", http_status_code=404, expected_params={"Bucket": name})
    for stub in stubs.values():
        stub.activate()
    return clients


def test_every_check_passes_on_a_ready_account(tmp_path):
    clients = _healthy_account(tmp_path)
    checks = ap.run_aws_checks(clients.__getitem__, config(), ENV, assembly(tmp_path / "cdk.out"))
    assert [c.status for c in checks] == [p.OK] * len(checks)
    assert [c.name for c in checks] == [
        "credentials", "region", "cloud assembly", "image sklearn training", "image sklearn inference", "cdk bootstrap",
        "quota ml.m5.large for processing job usage", "quota ml.m5.large for training job usage",
        "quota ml.m5.large for endpoint usage", "model monitor", "artifact bucket", "access-log bucket"]


def test_without_credentials_the_account_checks_are_skipped(tmp_path):
    def make(service):
        from stsmon.errors import StsmonError

        raise StsmonError("cannot create an AWS sts client: The config profile (nope) could not be found")

    checks = ap.run_aws_checks(make, config(), ENV, assembly(tmp_path / "cdk.out"))
    assert checks[0].status == p.FAIL and "profile (nope) could not be found" in checks[0].detail
    assert {c.status for c in checks[5:]} == {p.SKIP}


def test_an_unexpected_service_error_is_a_warning_not_a_crash(tmp_path):
    clients = _healthy_account(tmp_path)
    ssm = client("ssm")
    with Stubber(ssm) as stub:
        stub.add_client_error("get_parameter", service_error_code="ThrottlingException", service_message="Rate exceeded")
        clients["ssm"] = ssm
        checks = ap.run_aws_checks(clients.__getitem__, config(), ENV, assembly(tmp_path / "cdk.out"))
    bootstrap = next(c for c in checks if c.name == "cdk bootstrap")
    assert bootstrap.status == p.WARN and "ThrottlingException: Rate exceeded" in bootstrap.detail


def test_cli_aws_prints_one_line_per_check_and_exits_1_on_a_failure(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("AWS_REGION", REGION)
    clients = _healthy_account(tmp_path)
    ssm = client("ssm")
    stub = Stubber(ssm)
    stub.add_client_error("get_parameter", service_error_code="ParameterNotFound")
    stub.activate()
    clients["ssm"] = ssm
    made = []
    monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **kw: made.append((service, region)) or clients[service])
    result = CliRunner().invoke(cli_module.cli, ["doctor", "--target", "aws", "--assembly", str(assembly(tmp_path / "cdk.out"))])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"Checking AWS account and region {REGION} (profile: default chain)"
    assert sum(1 for line in lines if line.startswith(("ok ", "WARN ", "FAIL ", "skip "))) == 12
    fail = next(line for line in lines if line.startswith("FAIL"))
    assert "cdk bootstrap" in fail and f"-> npx cdk bootstrap aws://{ACCOUNT}/{REGION}" in fail
    assert lines[-1] == "12 checks: 11 ok, 0 warnings, 1 failed"
    assert "1 check(s) failed: cdk bootstrap" in str(result.exception)
    assert {region for _, region in made} == {REGION}


def test_cli_aws_exits_0_when_only_warnings(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("AWS_REGION", REGION)
    clients = _healthy_account(tmp_path)
    monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **kw: clients[service])
    result = CliRunner().invoke(cli_module.cli, ["doctor", "--target", "aws", "--assembly", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "WARN  cloud assembly" in result.output and result.output.splitlines()[-1].endswith("2 warnings, 0 failed")


def test_cli_local_checks_this_machine(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("STSMON_MSRP_DIR", str(tmp_path / "no-such-folder"))
    result = CliRunner().invoke(cli_module.cli, ["doctor", "--state-dir", str(tmp_path / "state"),
                                                 "--assembly", str(tmp_path / "none")])
    names = [line.split()[1] for line in result.output.splitlines()[:-1]]
    assert names == ["python", "scikit-learn", "node", "cdk", "disk", "corpus", "cloud"]
    assert result.exit_code == 1 and "FAIL  corpus" in result.output  # the corpus folder does not exist


# -- local checks: pass and fail ----------------------------------------------------------


def test_local_checks_pass_and_fail(tmp_path):
    assert p.check_python((3, 12, 1)).status == p.OK and p.check_python((3, 10, 9)).status == p.FAIL
    assert p.check_sklearn("1.9.0").status == p.OK
    assert p.check_sklearn("1.8.2").status == p.FAIL and p.check_sklearn(None).status == p.FAIL
    assert p.check_node("v20.11.1").status == p.OK and p.check_node("v18.19.0").status == p.FAIL
    assert p.check_node(None).status == p.FAIL
    assert p.check_disk(tmp_path, 5 << 30).status == p.OK
    assert p.check_disk(tmp_path, 3 << 29).status == p.WARN and p.check_disk(tmp_path, 1 << 20).status == p.FAIL
    assert p.check_assembly_local(tmp_path).status == p.WARN
    (tmp_path / "manifest.json").write_text("{}")
    assert p.check_assembly_local(tmp_path).status == p.OK


def test_cdk_cli_check(tmp_path, repo_root):
    assert p.check_cdk_cli(repo_root).status == p.OK
    (tmp_path / "package.json").write_text(json.dumps({"devDependencies": {"aws-cdk": "2.1148.1"}}))
    missing = p.check_cdk_cli(tmp_path)
    assert missing.status == p.FAIL and "npm ci" in missing.fix
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "cdk").write_text("")
    (tmp_path / "node_modules" / "aws-cdk").mkdir()
    (tmp_path / "node_modules" / "aws-cdk" / "package.json").write_text(json.dumps({"version": "2.1000.0"}))
    assert "2.1000.0 installed, package.json pins 2.1148.1" in p.check_cdk_cli(tmp_path).detail


def test_corpus_check(tmp_path, msrp):
    assert p.check_corpus(str(msrp), tmp_path).status == p.OK
    assert p.check_corpus(str(tmp_path / "nope"), tmp_path).status == p.FAIL
    assert p.check_corpus(None, tmp_path / "empty-cache").status == p.WARN


def test_render_one_line_each_and_a_summary():
    lines = p.render([p.Check("a", p.OK, "fine"), p.Check("bb", p.FAIL, "broken", "fix it")])
    assert lines == ["ok    a  fine", "FAIL  bb broken -> fix it", "2 checks: 1 ok, 0 warnings, 1 failed"]
