"""stscontracts.config: layers, precedence, validation, one message for every bad value."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stscontracts import config as config_module
from stscontracts.config import Config, ConfigError, cli_overrides, load_config, parse_context_pairs, read_dotenv


def test_defaults_keep_the_original_names():
    cfg = load_config()
    assert cfg.pipeline_name == "stsPipeline"
    assert cfg.model_package_group_name == "stsPackageGroup"
    assert cfg.base_job_prefix == "sts"
    assert cfg.endpoint_name == "sts-endpoint"
    assert cfg.monitoring_pipeline_name == "stsPipelineMonitoring"
    assert (cfg.account, cfg.region) == ("000000000000", "us-east-1")
    assert cfg.profile == "dev" and cfg.model_approval_status == "Approved"
    assert cfg.sklearn_image_version == "1.9-0"
    assert cfg.stack_name("serving") == "sts-serving"


def test_precedence_defaults_cdkjson_dotenv_env_cli(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport PIPELINE_NAME=fromDotenv\nBASE_JOB_PREFIX='dot'\nQUALITY_THRESHOLD=0.6\n")
    cdk_json = {"PIPELINE_NAME": "fromCdkJson", "BASE_JOB_PREFIX": "cdk", "QUALITY_THRESHOLD": 0.5, "ENDPOINT_NAME": "ep-cdk"}
    env = {"BASE_JOB_PREFIX": "envp", "QUALITY_THRESHOLD": "0.65", "UNRELATED": "x"}
    cli = {"QUALITY_THRESHOLD": "0.75"}
    cfg = load_config(cli, env, dotenv, cdk_json_context=cdk_json)
    assert cfg.endpoint_name == "ep-cdk"  # cdk.json beats the default
    assert cfg.pipeline_name == "fromDotenv"  # .env beats cdk.json
    assert cfg.base_job_prefix == "envp"  # environment beats .env
    assert cfg.quality_threshold == 0.75  # -c beats everything
    assert cfg.sources["quality_threshold"] == "-c"
    assert cfg.sources["pipeline_name"].endswith(".env:2")
    assert cfg.sources["endpoint_name"] == "cdk.json"


def test_derived_names_follow_the_prefix_and_pipeline():
    cfg = load_config({"BASE_JOB_PREFIX": "abc", "PIPELINE_NAME": "myPipe"})
    assert cfg.endpoint_name == "abc-endpoint"
    assert cfg.monitoring_pipeline_name == "myPipeMonitoring"
    assert cfg.stack_name("foundation") == "abc-foundation"


def test_one_error_names_every_bad_value_and_its_source(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("CAPTURE_SAMPLING_PERCENTAGE=150\n")
    with pytest.raises(ConfigError) as info:
        load_config(
            {"QUALITY_THRESHOLD": "high", "DEPLOY_PROFILE": "staging", "QUALITY_TRESHOLD": "1"},
            {"TRAINING_INSTANCE_TYPE": "m5.large", "LOG_RETENTION_DAYS": "31"},
            dotenv,
        )
    message = str(info.value)
    # Parse errors, unknown keys and invalid values, all in the same message ...
    assert "QUALITY_THRESHOLD='high' (-c): must be a number" in message
    assert "QUALITY_TRESHOLD (-c): unknown setting (did you mean QUALITY_THRESHOLD?)" in message
    assert "DEPLOY_PROFILE='staging' (-c): must be one of dev, prod" in message
    assert "CAPTURE_SAMPLING_PERCENTAGE=150 (" in message and ".env:1): must be between 0 and 100" in message
    assert "LOG_RETENTION_DAYS=31 (environment)" in message
    # ... and a name derived from a bad value is not reported on its own.
    with pytest.raises(ConfigError) as info:
        load_config({"BASE_JOB_PREFIX": "Bad Prefix!"}, {}, None)
    assert "BASE_JOB_PREFIX='Bad Prefix!' (-c)" in str(info.value)
    assert "ENDPOINT_NAME" not in str(info.value)
    # Every invalid value in one message.
    with pytest.raises(ConfigError) as info:
        load_config(
            {"DEPLOY_PROFILE": "staging", "MONITOR_BACKEND": "spark"},
            {"TRAINING_INSTANCE_TYPE": "m5.large", "LOG_RETENTION_DAYS": "31"},
            dotenv,
        )
    message = str(info.value)
    for expected in (
        "DEPLOY_PROFILE='staging' (-c): must be one of dev, prod",
        "MONITOR_BACKEND='spark' (-c)",
        "TRAINING_INSTANCE_TYPE='m5.large' (environment)",
        "LOG_RETENTION_DAYS=31 (environment)",
        "CAPTURE_SAMPLING_PERCENTAGE=150 (" + str(dotenv) + ":1)",
    ):
        assert expected in message
    assert message.count("\n") == 5


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("BASE_JOB_PREFIX", "Has_Upper"),
        ("PIPELINE_NAME", "bad name"),
        ("MODEL_PACKAGE_GROUP_NAME", "-leading"),
        ("CDK_DEFAULT_ACCOUNT", "1234"),
        ("CDK_DEFAULT_REGION", "mars"),
        ("ENDPOINT_INSTANCE_COUNT", "0"),
        ("ENDPOINT_INSTANCE_COUNT", "1.5"),
        ("MODEL_APPROVAL_STATUS", "approved"),
        ("PROBLEM_TYPE", "MultiClass"),
        ("QUALITY_METRIC", "rmse"),
        ("QUALITY_THRESHOLD", "1.5"),
        ("QUALITY_THRESHOLD", "nan"),
        ("MONITOR_SCHEDULE", "every hour"),
        ("MONITOR_WINDOW_HOURS", "0"),
        ("MONITOR_MIN_LABEL_COVERAGE", "2"),
        ("DATA_RETENTION_DAYS", "0"),
        ("ALARM_LATENCY_MS", "0"),
        ("SKLEARN_IMAGE_VERSION", "latest"),
        ("MODEL_PACKAGE_ARN", "arn:aws:sagemaker:us-east-1:123:model-package/x"),
    ],
)
def test_each_rule_rejects_a_bad_value(key, value):
    with pytest.raises(ConfigError, match=key):
        load_config({key: value})


def test_metric_must_fit_the_problem_type():
    cfg = load_config({"PROBLEM_TYPE": "Regression", "QUALITY_METRIC": "rmse", "QUALITY_THRESHOLD": "0.9"})
    assert cfg.gate_higher_is_better is False
    assert cfg.monitored_metrics == ("mae", "rmse", "r2")
    with pytest.raises(ConfigError, match="for Regression"):
        load_config({"PROBLEM_TYPE": "Regression"})  # accuracy is not a regression metric


def test_model_monitor_backend_needs_a_cron_schedule():
    with pytest.raises(ConfigError, match="cron"):
        load_config({"MONITOR_BACKEND": "model-monitor", "MONITOR_SCHEDULE": "rate(1 hour)"})
    assert load_config({"MONITOR_BACKEND": "model-monitor"}).monitor_backend == "model-monitor"


def test_json_values_from_cdk_json_are_accepted():
    cfg = load_config(cdk_json_context={"ENDPOINT_INSTANCE_COUNT": 2, "QUALITY_THRESHOLD": 1, "PIPELINE_NAME": "p"})
    assert cfg.endpoint_instance_count == 2 and cfg.quality_threshold == 1.0
    with pytest.raises(ConfigError, match="whole number"):
        load_config(cdk_json_context={"ENDPOINT_INSTANCE_COUNT": True})
    with pytest.raises(ConfigError, match="must be text"):
        load_config(cdk_json_context={"PIPELINE_NAME": ["a"]})


def test_config_is_frozen_and_comparable():
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.pipeline_name = "x"  # type: ignore[misc]
    assert cfg == load_config({}, {}, None)
    assert cfg != config_module.replace(cfg, quality_threshold=0.8)
    with pytest.raises(ConfigError):
        config_module.replace(cfg, profile="test")


def test_dotenv_bad_line_names_file_and_line(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PIPELINE_NAME=ok\nthis is not a pair\n")
    with pytest.raises(ConfigError, match=r"\.env:2: expected KEY=VALUE"):
        read_dotenv(dotenv)
    assert read_dotenv(tmp_path / "missing.env") == {}


def test_unknown_keys_in_cdk_json_flags_are_ignored_but_ours_are_checked():
    flags = {"@aws-cdk/core:newStyleStackSynthesis": True, "acknowledged-issue-numbers": [1]}
    assert load_config(cdk_json_context=flags).pipeline_name == "stsPipeline"
    with pytest.raises(ConfigError, match="PIPELINE_NAMES \\(cdk.json\\): unknown setting"):
        load_config(cdk_json_context={"PIPELINE_NAMES": "x"})


def test_cli_pairs_and_overrides():
    assert parse_context_pairs(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_context_pairs(["novalue"])
    merged = {"PIPELINE_NAME": "stsPipeline", "BASE_JOB_PREFIX": "zz", "@aws-cdk/x": True, "NEW_KEY": "1"}
    cdk_json = {"PIPELINE_NAME": "stsPipeline", "BASE_JOB_PREFIX": "sts"}
    assert cli_overrides(merged, cdk_json) == {"BASE_JOB_PREFIX": "zz", "NEW_KEY": "1"}


def test_describe_lists_every_setting_with_its_source():
    cfg = load_config({"PIPELINE_NAME": "x"})
    rows = {key: (value, source) for key, value, source in config_module.describe(cfg)}
    assert set(rows) == set(config_module.KEYS)
    assert rows["PIPELINE_NAME"] == ("x", "-c")
    assert rows["BASE_JOB_PREFIX"] == ("sts", "default")


def test_repo_cdk_json_context_is_valid(repo_root):
    context = config_module.read_cdk_json_context(repo_root / "cdk.json")
    assert context, "cdk.json should carry the documented defaults"
    cfg = load_config(cdk_json_context=context)
    assert cfg.pipeline_name == "stsPipeline"


def test_config_module_imports_no_cdk(subprocess_env, repo_root):
    code = "import sys, stscontracts.config; print(sorted(m for m in sys.modules if m.startswith(('aws_cdk', 'jsii', 'sagemaker'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, env=subprocess_env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().replace("'", '"')) == []


def test_default_dataclass_matches_load_config_defaults():
    # The dataclass defaults are the bottom layer; derived names are filled by load_config.
    assert Config().pipeline_name == load_config().pipeline_name
