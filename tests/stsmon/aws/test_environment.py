"""One AWS region for `--target aws`: the one the CDK CLI deploys to (fault 8).

The rules are read in the pinned CDK CLI (aws-cdk 2.1148.1,
node_modules/aws-cdk/lib/index.js: AwsCliCompatible.region, getRegionFromIni,
prepareDefaultEnvironment) and checked against it: the agreement test runs that
CLI on the same environment and AWS config files and reads the
CDK_DEFAULT_REGION it hands the app. No network, no credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from stsmon import cli as cli_module
from stsmon.aws.environment import (
    AwsEnvironment,
    assembly_mismatch,
    cdk_settings,
    resolve_aws_environment,
)
from stscontracts.config import load_config, read_cdk_json_context

CONFIG = """\
[default]
region = ap-south-1

[profile eu]
region = eu-west-1

[profile noregion]
output = json

[profile both]
region = us-west-1
"""
# No keys anywhere: the CDK CLI then looks up no account (no STS call, no network).
CREDENTIALS = """\
[both]
region = ca-central-1
"""


@pytest.fixture
def aws_files(tmp_path):
    config, credentials = tmp_path / "aws" / "config", tmp_path / "aws" / "credentials"
    config.parent.mkdir()
    config.write_text(CONFIG)
    credentials.write_text(CREDENTIALS)
    return {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}


# (extra environment, --profile, expected region): the CDK CLI's order.
CASES = [
    ({}, None, "ap-south-1"),                                              # default profile's region
    ({"AWS_PROFILE": "eu"}, None, "eu-west-1"),                             # the profile's region
    ({"AWS_DEFAULT_PROFILE": "eu"}, None, "eu-west-1"),
    ({"AWS_PROFILE": "eu", "AWS_DEFAULT_PROFILE": "both"}, None, "eu-west-1"),  # AWS_PROFILE first (botocore: the other)
    ({"AWS_PROFILE": "noregion"}, None, "ap-south-1"),                      # no region: the default profile's
    ({"AWS_PROFILE": "both"}, None, "ca-central-1"),                        # credentials file before config file
    ({"AWS_PROFILE": "eu"}, "both", "ca-central-1"),                        # --profile before AWS_PROFILE
    ({"AWS_PROFILE": "eu", "AWS_DEFAULT_REGION": "us-east-2"}, None, "us-east-2"),
    ({"AWS_DEFAULT_REGION": "us-east-2", "AWS_REGION": "eu-north-1"}, None, "eu-north-1"),
    ({"AMAZON_REGION": "eu-south-1", "AWS_DEFAULT_REGION": "us-east-2"}, None, "eu-south-1"),
    ({"CDK_DEFAULT_REGION": "sa-east-1", "AWS_PROFILE": "eu"}, None, "eu-west-1"),  # CDK_DEFAULT_REGION is not an input
]
#: The cases also asked of the real CDK CLI (about 1.5 s each): the fault's own
#: case and every rule where botocore would answer differently.
ASK_CDK = [CASES[i] for i in (1, 3, 4, 5, 6)] + [
    ({"AWS_DEFAULT_REGION": "us-east-2", "AWS_REGION": "eu-north-1", "CDK_DEFAULT_REGION": "sa-east-1"}, None,
     "eu-north-1"),
]


@pytest.mark.parametrize(("extra", "profile", "region"), CASES)
def test_the_region_follows_the_cdk_cli_order(aws_files, extra, profile, region):
    assert resolve_aws_environment({**aws_files, **extra}, profile=profile).region == region


def test_without_any_configuration_it_is_us_east_1(tmp_path):
    env = resolve_aws_environment({"HOME": str(tmp_path)})
    assert (env.region, env.profile, env.explicit_profile) == ("us-east-1", None, False)
    assert "default" in env.region_source


def test_the_source_is_named_for_messages(aws_files):
    env = resolve_aws_environment({**aws_files, "AWS_PROFILE": "eu"})
    assert env.describe() == f"eu-west-1 (profile eu in {aws_files['AWS_CONFIG_FILE']})"
    assert (env.profile, env.profile_source, env.explicit_profile) == ("eu", "AWS_PROFILE", False)
    fallback = resolve_aws_environment({**aws_files, "AWS_PROFILE": "noregion"})
    assert "profile noregion has no region" in fallback.region_source


def test_cdk_json_settings_are_read_like_the_cdk_cli(tmp_path, aws_files):
    (tmp_path / ".cdk.json").write_text(json.dumps({"profile": "both"}))
    project = tmp_path / "project"
    project.mkdir()
    (project / "cdk.json").write_text(json.dumps({"app": "x", "profile": "eu"}))
    settings = cdk_settings(project, aws_files)
    assert settings == {"profile": "eu"}  # the project's cdk.json wins over ~/.cdk.json
    env = resolve_aws_environment(aws_files, settings=settings)
    assert (env.region, env.profile, env.explicit_profile) == ("eu-west-1", "eu", True)
    (project / "cdk.json").write_text(json.dumps({"region": "eu-central-1"}))
    assert resolve_aws_environment({**aws_files, "AWS_REGION": "us-west-2"},
                                   settings=cdk_settings(project, aws_files)).region == "eu-central-1"


def test_profile_and_region_are_handed_to_boto3_and_the_cdk_cli(aws_files):
    from_env = resolve_aws_environment({**aws_files, "AWS_PROFILE": "eu"})
    assert from_env.boto3_profile is None  # botocore finds AWS_PROFILE itself (and env credentials first, like cdk)
    assert from_env.cdk_args() == ["--region", "eu-west-1"]
    given = resolve_aws_environment(aws_files, profile="eu")
    assert given.boto3_profile == "eu"
    assert given.cdk_args() == ["--region", "eu-west-1", "--profile", "eu"]
    # Both profile variables set to different profiles: botocore would pick AWS_DEFAULT_PROFILE.
    both = resolve_aws_environment({**aws_files, "AWS_PROFILE": "eu", "AWS_DEFAULT_PROFILE": "both"})
    assert both.boto3_profile == "eu"


def _cdk_cli_region(repo_root: Path, workdir: Path, env: dict[str, str], profile: str | None) -> str:
    """The CDK_DEFAULT_REGION the pinned CDK CLI gives an app, for this environment."""
    app = workdir / "app.py"
    app.write_text(
        "import json, os\n"
        "out = os.environ['CDK_OUTDIR']\n"
        "json.dump({'region': os.environ.get('CDK_DEFAULT_REGION')}, open(os.path.join(out, 'probe.json'), 'w'))\n"
        "json.dump({'version': '36.0.0', 'artifacts': {}}, open(os.path.join(out, 'manifest.json'), 'w'))\n"
    )
    argv = [str(repo_root / "node_modules" / ".bin" / "cdk"), "synth", "--app", f"python3 {app}", "--output",
            str(workdir / "out"), "--no-notices", "--quiet"]
    if profile:
        argv += ["--profile", profile]
    base = {"PATH": os.environ["PATH"], "CDK_DISABLE_CLI_TELEMETRY": "true", "AWS_EC2_METADATA_DISABLED": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run(argv, cwd=workdir, env={**base, **env}, capture_output=True, text=True, timeout=120)
    probe = workdir / "out" / "probe.json"  # the probe app declares no stacks, so cdk then exits 1: fine
    assert probe.is_file(), result.stderr[-2000:]
    return json.loads(probe.read_text())["region"]


@pytest.mark.slow
def test_the_pinned_cdk_cli_resolves_the_same_region(repo_root, tmp_path, aws_files):
    """The cases of ASK_CDK, asked of the real CDK CLI (run two at a time)."""
    if not (repo_root / "node_modules" / ".bin" / "cdk").is_file() or shutil.which("python3") is None:
        pytest.fail("the pinned CDK CLI is missing: run ./run.sh setup")

    def ask(index_case):
        index, (extra, profile, _) = index_case
        workdir = tmp_path / f"case{index}"
        workdir.mkdir()
        return _cdk_cli_region(repo_root, workdir, {**aws_files, **extra}, profile)

    with ThreadPoolExecutor(max_workers=2) as pool:
        cdk_regions = list(pool.map(ask, enumerate(ASK_CDK)))
    ours = [resolve_aws_environment({**aws_files, **extra}, profile=profile).region for extra, profile, _ in ASK_CDK]
    assert ours == cdk_regions == [region for _, _, region in ASK_CDK]


# -- the CLI: configuration, clients, the CDK hand-off ------------------------------------


@pytest.fixture
def eu_profile(aws_files, monkeypatch, repo_root):
    """A user whose AWS profile is in eu-west-1; nothing else configured."""
    monkeypatch.chdir(repo_root)
    for key, value in aws_files.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_PROFILE", "eu")
    for key in ("CDK_DEFAULT_REGION", "CDK_DEFAULT_ACCOUNT"):
        monkeypatch.delenv(key, raising=False)


def test_the_cli_configuration_is_in_the_profiles_region(eu_profile):
    from stsmon.commands.common import load_cli_config

    assert load_cli_config().region == "eu-west-1"
    # -c still pins another region, for the app and the commands alike.
    assert load_cli_config(("CDK_DEFAULT_REGION=eu-central-1",)).region == "eu-central-1"


def test_the_app_gets_the_same_configuration_from_the_cdk_cli(eu_profile, repo_root):
    """app.py builds its configuration from the environment the CDK CLI gives it:
    CDK_DEFAULT_REGION = the region the CDK CLI resolved (eu-west-1 here, as the
    agreement test shows). The CLI's configuration equals that one."""
    from stsmon.commands.common import load_cli_config

    app_env = {**os.environ, "CDK_DEFAULT_REGION": "eu-west-1"}
    cdk_json = read_cdk_json_context(repo_root / "cdk.json")
    app_config = load_config({}, app_env, repo_root / ".env", cdk_json_context=cdk_json)
    assert app_config == load_cli_config()


def _recording_clients(monkeypatch):
    made: list[tuple[str, str | None, str | None]] = []

    def fake_client(service, region=None, *, profile=None):
        made.append((service, region, profile))
        raise SystemExit(0)  # enough: the command asked for its first client

    monkeypatch.setattr("stsmon.aws.client", fake_client)
    return made


def test_aws_commands_look_in_the_profiles_region(eu_profile, monkeypatch):
    """Before the fix every client was made in us-east-1 (CDK_DEFAULT_REGION's
    default) while `cdk deploy` had put the stacks in eu-west-1."""
    for argv in (["status", "--target", "aws"], ["report", "--target", "aws"], ["monitor", "run", "--target", "aws"],
                 ["cleanup", "--target", "aws", "--yes"], ["ground-truth", "--target", "aws", "--mode", "random"],
                 ["train", "--target", "aws"]):
        made = _recording_clients(monkeypatch)
        result = CliRunner().invoke(cli_module.cli, argv)
        assert made and made[0][1:] == ("eu-west-1", None), (argv, result.output)


def test_profile_option_picks_the_profile_and_its_region(eu_profile, monkeypatch):
    made = _recording_clients(monkeypatch)
    CliRunner().invoke(cli_module.cli, ["status", "--target", "aws", "--profile", "both"])
    assert made == [("cloudformation", "ca-central-1", "both")]


def test_traffic_sends_to_the_profiles_region(eu_profile, monkeypatch, tmp_path):
    from stsmon.aws.runtime import AwsRuntime
    from stsmon.commands import traffic

    seen = {}

    def fake_runtime_client(self, *, concurrency):
        seen.update(region=self.config.region, profile=self.environment.boto3_profile)
        raise SystemExit(0)

    monkeypatch.setattr(AwsRuntime, "sagemaker_runtime", fake_runtime_client)
    monkeypatch.setattr("stsmon.clients.stacks.deployed_outputs", lambda clients, kinds=(): {"EndpointName": "sts-endpoint"})
    monkeypatch.setattr(traffic, "check_in_service", lambda clients, name: None)
    split = tmp_path / "test.csv"
    split.write_text("1,a,b\n")
    CliRunner().invoke(cli_module.cli, ["traffic", "--target", "aws", "--input", str(split), "--profile", "eu",
                                        "--state-dir", str(tmp_path / "state")])
    assert seen == {"region": "eu-west-1", "profile": "eu"}


def test_synth_hands_the_region_and_profile_to_the_cdk_cli(eu_profile, monkeypatch):
    from stsmon.commands import synth

    seen = {}
    monkeypatch.setattr(synth, "run_synth", lambda project, context, output, stacks, *, environment: seen.update(
        environment=environment) or Path("cdk.out"))
    result = CliRunner().invoke(cli_module.cli, ["synth", "--profile", "eu"])
    assert result.exit_code == 0, result.output
    environment: AwsEnvironment = seen["environment"]
    assert environment.cdk_args() == ["--region", "eu-west-1", "--profile", "eu"]
    assert "for region eu-west-1" in result.output
    argv = synth.synth_argv(Path("."), ("A=1",), None, (), environment)
    assert argv[argv.index("synth") + 1:] == ["--quiet", "--no-notices", "--no-version-reporting", "--region",
                                              "eu-west-1", "--profile", "eu", "-c", "A=1"]


# -- an assembly synthesized for somewhere else ---------------------------------------------


def _assembly(folder: Path, env: str) -> Path:
    folder.mkdir(parents=True)
    artifacts = {name: {"type": "aws:cloudformation:stack", "environment": env, "displayName": name}
                 for name in ("sts-foundation", "sts-training")}
    artifacts["sts-foundation.assets"] = {"type": "cdk:asset-manifest"}
    (folder / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return folder


def test_an_assembly_for_another_region_or_account_is_named(tmp_path):
    assembly = _assembly(tmp_path / "cdk.out", "aws://000000000000/us-east-1")
    assert "synthesized for region us-east-1, but --target aws uses eu-west-1" in \
        assembly_mismatch(assembly, region="eu-west-1")
    assert "synthesized for account 000000000000, but your credentials are for 123456789012" in \
        assembly_mismatch(assembly, region="us-east-1", account="123456789012")
    assert assembly_mismatch(assembly, region="us-east-1", account="000000000000") is None


def test_deploy_target_aws_refuses_an_assembly_for_another_region(eu_profile, monkeypatch, tmp_path):
    """`cdk deploy --app cdk.out` deploys where the assembly says: a us-east-1
    assembly would land in us-east-1 while every command looks in eu-west-1."""
    from botocore.stub import Stubber


    import botocore.session

    sts = botocore.session.get_session().create_client("sts", region_name="eu-west-1", aws_access_key_id="x",
                                                        aws_secret_access_key="y")
    stub = Stubber(sts)
    stub.add_response("get_caller_identity", {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/u",
                                              "UserId": "AIDA"})
    stub.activate()
    monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **_: sts)
    ran = []
    monkeypatch.setattr("stsmon.aws.runtime.subprocess.run", lambda argv, **kw: ran.append(argv))
    assembly = _assembly(tmp_path / "cdk.out", "aws://123456789012/us-east-1")
    result = CliRunner().invoke(cli_module.cli, ["deploy", "--target", "aws", "--assembly", str(assembly)])
    assert result.exit_code != 0 and ran == []
    assert "synthesized for region us-east-1, but --target aws uses eu-west-1" in str(result.exception)


def test_deploy_target_aws_dry_run_shows_the_diff_and_deploys_nothing(monkeypatch, tmp_path):
    """`stsmon deploy --target aws --dry-run` ran `cdk deploy` (the flag only reached the local deployer):
    now it runs `cdk diff` on the same assembly."""
    from botocore.stub import Stubber

    import botocore.session

    monkeypatch.setenv("AWS_REGION", "us-east-1")
    sts = botocore.session.get_session().create_client("sts", region_name="us-east-1", aws_access_key_id="x",
                                                        aws_secret_access_key="y")
    stub = Stubber(sts)
    stub.add_response("get_caller_identity", {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/u",
                                              "UserId": "AIDA"})
    stub.activate()
    monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **_: sts)
    ran = []
    monkeypatch.setattr("stsmon.aws.runtime.subprocess.run",
                        lambda argv, **kw: ran.append(argv) or subprocess.CompletedProcess(argv, 0))
    assembly = _assembly(tmp_path / "cdk.out", "aws://123456789012/us-east-1")
    result = CliRunner().invoke(cli_module.cli, ["deploy", "--target", "aws", "--dry-run", "--assembly", str(assembly)])
    assert result.exit_code == 0, result.output
    (argv,) = ran
    assert "diff" in argv and "deploy" not in argv and argv[-3:] == ["--app", str(assembly), "--no-notices"]
