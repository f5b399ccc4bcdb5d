"""The monitoring pipeline definition follows monitor.py's interface (docs/CONTRACTS.md)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline_code import placeholders
from pipeline_code.monitoring import build_monitoring_definition
from pipeline_graph import all_steps, edges
from stscontracts import names
from stscontracts.config import load_config

CODE_PREFIX = "sts/code/0123456789abcdef/"
BUCKET = placeholders.BUCKET


@pytest.fixture(scope="module")
def definition():
    cfg = load_config({"MONITOR_WINDOW_HOURS": "2", "MONITOR_LABEL_DELAY_HOURS": "3", "MONITOR_MIN_LABEL_COVERAGE": "0.4"})
    return build_monitoring_definition(cfg, CODE_PREFIX)


@pytest.fixture(scope="module")
def step(definition):
    (step,) = definition["Steps"]
    return step


def test_one_processing_step_no_edges(definition, step):
    assert step["Name"] == names.STEP_MONITOR and step["Type"] == "Processing"
    assert len(all_steps(definition)) == 1 and edges(definition) == set()


def test_parameters_and_defaults_from_config(definition):
    params = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert params == {
        "WindowEnd": ("String", ""),
        "WindowHours": ("Integer", 2),
        "LabelDelayHours": ("Integer", 3),
        "MinLabelCoverage": ("Float", 0.4),
        "PublishCloudWatch": ("String", "true"),
        "BaselineConstraintsUri": ("String", placeholders.BASELINE_URI),
        "DataQualityBaselineUri": ("String", placeholders.DATA_QUALITY_BASELINE_URI),
        "MonitoringInstanceType": ("String", "ml.m5.large"),
    }


def test_inputs_are_code_and_baselines_only_no_growing_prefix(step):
    """Capture and ground truth grow every hour (up to the retention): a processing input would copy
    all of it onto the volume before every run. monitor.py reads the window's hours from S3 itself."""
    inputs = {i["InputName"]: i["S3Input"] for i in step["Arguments"]["ProcessingInputs"]}
    assert set(inputs) == {"code", "baseline", "data-quality-baseline"}
    assert inputs["code"]["S3Uri"] == f"s3://{BUCKET}/{CODE_PREFIX}"
    assert inputs["baseline"]["S3Uri"] == {"Get": "Parameters.BaselineConstraintsUri"}
    assert inputs["baseline"]["LocalPath"] == "/opt/ml/processing/input/baseline"
    dq = inputs["data-quality-baseline"]
    assert dq["S3Uri"] == {"Get": "Parameters.DataQualityBaselineUri"}
    assert dq["LocalPath"] == "/opt/ml/processing/input/data-quality-baseline"
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--data-quality-baseline-dir") + 1] == dq["LocalPath"]
    for name, s3 in inputs.items():
        assert "datacapture" not in str(s3["S3Uri"]) and "ground-truth" not in str(s3["S3Uri"]), name


def test_output_by_schedule_and_execution(step):
    (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == names.OUTPUT_MONITORING
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output"
    assert output["S3Output"]["S3Uri"]["Std:Join"] == {
        "On": "/",
        "Values": [f"s3://{BUCKET}/sts/monitoring/sts-model-quality", {"Get": "Execution.PipelineExecutionId"}],
    }
    assert step["Arguments"]["ProcessingOutputConfig"]["KmsKeyId"] == placeholders.KMS_KEY_ARN


def _resolve(arg, values):
    """A container argument with pipeline expressions evaluated for one execution."""
    if isinstance(arg, str):
        return arg
    if "Get" in arg:
        return values[arg["Get"]]
    join = arg["Std:Join"]
    return join["On"].join(str(_resolve(v, values)) for v in join["Values"])


def test_arguments_parse_with_the_monitor_interface(step):
    """The step's arguments, resolved for one execution, parse with monitor.py's own parser."""
    from processing_scripts import monitor

    args = step["Arguments"]["AppSpecification"]
    assert args["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/monitor.py"]
    values = {
        "Execution.StartDateTime": "2026-11-27T13:05:00.123Z",
        "Parameters.WindowEnd": "",
        "Parameters.WindowHours": 2,
        "Parameters.LabelDelayHours": 3,
        "Parameters.MinLabelCoverage": 0.4,
        "Parameters.PublishCloudWatch": "true",
    }
    argv = [_resolve(a, values) for a in args["ContainerArguments"]]
    parsed = vars(monitor.build_parser().parse_args(argv))
    assert parsed == {
        "capture_uri": f"s3://{BUCKET}/sts/datacapture/sts-endpoint",
        "ground_truth_uri": f"s3://{BUCKET}/sts/ground-truth",
        "capture_dir": None,
        "ground_truth_dir": None,
        "download_dir": Path("/opt/ml/processing/window"),
        "region": placeholders.REGION,
        "baseline_dir": Path("/opt/ml/processing/input/baseline"),
        "data_quality_baseline_dir": Path("/opt/ml/processing/input/data-quality-baseline"),
        "data_quality_sample": 5000,
        "output_dir": Path("/opt/ml/processing/output"),
        "exit_message_file": Path("/opt/ml/output/message"),  # SageMaker's: the job's ExitMessage
        "execution_time": "2026-11-27T13:05:00.123Z",
        "window_end": "",
        "window_hours": 2,
        "label_delay_hours": 3,
        "endpoint_name": "sts-endpoint",
        "schedule_name": "sts-model-quality",
        "namespace": "stsmodelmonitor",
        "publish_cloudwatch": True,
        "min_label_coverage": 0.4,
        "problem_type": "auto",
    }
    settings = monitor.settings_from_args(argv, now=datetime(2040, 1, 1, tzinfo=timezone.utc))
    # the execution's start (not the clock) places the window: 13:05 - 3 h delay -> [08:00, 10:00)
    assert (settings.window_start, settings.window_end) == (datetime(2026, 11, 27, 8, tzinfo=timezone.utc),
                                                            datetime(2026, 11, 27, 10, tzinfo=timezone.utc))
    assert settings.label_end == datetime(2026, 11, 27, 14, tzinfo=timezone.utc)


def test_monitor_job_keeps_network_for_cloudwatch_but_encrypts(step):
    args = step["Arguments"]
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == placeholders.KMS_KEY_ARN
    assert args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == {"Get": "Parameters.MonitoringInstanceType"}


def test_names_follow_the_configuration():
    cfg = load_config({"BASE_JOB_PREFIX": "para", "ENDPOINT_NAME": "para-live"})
    definition = build_monitoring_definition(cfg, "para/code/abc/")
    argv = definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert argv[argv.index("--capture-uri") + 1] == f"s3://{BUCKET}/para/datacapture/para-live"
    assert argv[argv.index("--ground-truth-uri") + 1] == f"s3://{BUCKET}/para/ground-truth"
    assert argv[argv.index("--schedule-name") + 1] == "para-model-quality"
