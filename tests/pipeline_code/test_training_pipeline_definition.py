"""The training pipeline definition, read as data: steps, edges, gate, references, encryption."""

from __future__ import annotations

import json
import logging
import os

import pytest

from pipeline_code import placeholders
from pipeline_code.training import build_training_definition
from pipeline_graph import all_references, all_steps, check_reference, edges
from stscontracts import names
from stscontracts.config import load_config

CODE_PREFIX = "sts/code/0123456789abcdef/"
BUCKET = placeholders.BUCKET
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"


@pytest.fixture(scope="module")
def definition():
    return build_training_definition(load_config(), CODE_PREFIX)


@pytest.fixture(scope="module")
def steps(definition):
    return all_steps(definition)


def test_steps_and_types(steps, definition):
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "CheckQuality"]
    assert {name: step["Type"] for name, step in steps.items()} == {
        names.STEP_PREPROCESS: "Processing",
        names.STEP_TRAIN: "Training",
        names.STEP_EVALUATE: "Processing",
        names.STEP_QUALITY_GATE: "Condition",
        names.STEP_BASELINE: "Processing",
        names.STEP_DATA_QUALITY_BASELINE: "Processing",
        names.STEP_REGISTER: "RegisterModel",
        names.STEP_FAIL: "Fail",
    }
    gate = steps["CheckQuality"]["Arguments"]
    assert [s["Name"] for s in gate["IfSteps"]] == ["Baseline", "BaselineDataQuality", "RegisterModel"]
    assert [s["Name"] for s in gate["ElseSteps"]] == ["QualityGateFailed"]


def test_edges_are_the_intended_graph(definition):
    assert edges(definition) == {
        ("Preprocess", "Train"),
        ("Preprocess", "Evaluate"),
        ("Train", "Evaluate"),
        ("Evaluate", "CheckQuality"),
        ("CheckQuality", "Baseline"),
        ("CheckQuality", "BaselineDataQuality"),
        ("CheckQuality", "RegisterModel"),
        ("CheckQuality", "QualityGateFailed"),
        ("Preprocess", "Baseline"),
        ("Train", "Baseline"),
        ("Train", "RegisterModel"),
        ("Evaluate", "RegisterModel"),
        ("Baseline", "RegisterModel"),
        ("Preprocess", "BaselineDataQuality"),
        ("Train", "BaselineDataQuality"),
        ("BaselineDataQuality", "RegisterModel"),
        ("Evaluate", "QualityGateFailed"),
    }


def test_every_property_reference_resolves(definition, steps):
    references = list(all_references(definition))
    assert len(references) >= 12
    problems = [check_reference(steps, name, path) for name, path in references]
    assert [p for p in problems if p] == []


def test_quality_gate_compares_the_configured_metric_with_the_threshold_parameter(steps):
    (condition,) = steps["CheckQuality"]["Arguments"]["Conditions"]
    assert condition == {
        "Type": "GreaterThanOrEqualTo",
        "LeftValue": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                "Path": "binary_classification_metrics.accuracy.value",
            }
        },
        "RightValue": {"Get": "Parameters.QualityThreshold"},
    }
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]


def test_fail_message_carries_the_metric_value_and_threshold(steps):
    message = steps["QualityGateFailed"]["Arguments"]["ErrorMessage"]["Std:Join"]
    assert message["On"] == " "
    values = message["Values"]
    assert {"Get": "Parameters.QualityThreshold"} in values
    assert any("Std:JsonGet" in v for v in values if isinstance(v, dict))
    assert "accuracy" in values[0] and "below" in " ".join(v for v in values if isinstance(v, str))


def test_regression_gate_on_an_error_metric_flips_the_comparison():
    cfg = load_config({"PROBLEM_TYPE": "Regression", "QUALITY_METRIC": "rmse", "QUALITY_THRESHOLD": "1.2"})
    steps = all_steps(build_training_definition(cfg, CODE_PREFIX))
    (condition,) = steps["CheckQuality"]["Arguments"]["Conditions"]
    assert condition["Type"] == "LessThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "regression_metrics.rmse.value"
    values = steps["QualityGateFailed"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert "above" in " ".join(v for v in values if isinstance(v, str))


@pytest.mark.parametrize(
    ("overrides", "problem_type", "metrics_key"),
    [
        ({}, "BinaryClassification", "binary_classification_metrics"),
        ({"PROBLEM_TYPE": "Regression", "QUALITY_METRIC": "rmse", "QUALITY_THRESHOLD": "1.2"}, "Regression", "regression_metrics"),
    ],
)
def test_problem_type_is_one_synth_time_value_everywhere(overrides, problem_type, metrics_key):
    """The gate's JsonGet path is fixed at synth, so the problem type must be too: a
    run-time ProblemType override would train a Regression model and then gate it on
    binary_classification_metrics (a JsonGet of a missing key). Every step that takes
    the problem type gets the same literal the gate's path was built for."""
    definition = build_training_definition(load_config(overrides), CODE_PREFIX)
    steps = all_steps(definition)
    assert "ProblemType" not in {p["Name"] for p in definition["Parameters"]}
    assert "Parameters.ProblemType" not in json.dumps(definition)
    args = steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--problem-type") + 1] == problem_type
    assert steps["Train"]["Arguments"]["HyperParameters"]["problem-type"] == problem_type
    assert steps["RegisterModel"]["Arguments"]["CustomerMetadataProperties"] == {"ProblemType": problem_type}
    paths = [c["LeftValue"]["Std:JsonGet"]["Path"] for c in steps["CheckQuality"]["Arguments"]["Conditions"]]
    assert paths and all(path.startswith(f"{metrics_key}.") for path in paths)
    assert names.METRICS_KEY[problem_type] == metrics_key


def test_a_run_time_problem_type_is_refused_before_anything_runs(definition):
    """Locally the executor refuses an undeclared parameter before staging anything; the
    CLI says why for ProblemType on either target (tests/stsmon/commands/test_train.py)."""
    from stsmon.errors import UsageError
    from stsmon.localcloud.executor import resolve_parameters

    with pytest.raises(UsageError, match="unknown pipeline parameter.*ProblemType"):
        resolve_parameters(definition, {"ProblemType": "Regression"})
    assert "QualityThreshold" in resolve_parameters(definition, {})


def test_parameters(definition):
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert params["InputDataUri"]["DefaultValue"] == f"s3://{BUCKET}/sts/input/"
    assert "ProblemType" not in params  # fixed at synth: see test_problem_type_is_one_synth_time_value_everywhere
    assert params["ProcessingInstanceType"]["DefaultValue"] == "ml.m5.large"
    assert params["TrainingInstanceType"]["DefaultValue"] == "ml.m5.large"
    assert params["ModelApprovalStatus"]["DefaultValue"] == "Approved"
    assert params["QualityThreshold"] == {"Name": "QualityThreshold", "Type": "Float", "DefaultValue": 0.7}
    used = {path.split(".", 1)[1] for path in _gets(definition["Steps"]) if path.startswith("Parameters.")}
    assert used == set(params), "every parameter is used and every used parameter is declared"


def test_processing_steps_run_the_shipped_scripts_isolated_and_encrypted(steps):
    scripts = {"Preprocess": "preprocess.py", "Evaluate": "evaluate.py", "Baseline": "baseline.py",
               "BaselineDataQuality": "data_quality_baseline.py"}
    for name, script in scripts.items():
        args = steps[name]["Arguments"]
        assert args["AppSpecification"]["ContainerEntrypoint"] == ["python3", f"/opt/ml/processing/input/code/{script}"]
        assert args["AppSpecification"]["ImageUri"] == IMAGE
        code = next(i for i in args["ProcessingInputs"] if i["InputName"] == "code")["S3Input"]
        assert code["S3Uri"] == f"s3://{BUCKET}/{CODE_PREFIX}"
        assert code["LocalPath"] == "/opt/ml/processing/input/code"
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == placeholders.KMS_KEY_ARN
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == placeholders.KMS_KEY_ARN
        assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert args["RoleArn"] == placeholders.ROLE_ARN
        assert "ProcessingJobName" not in args


def test_outputs_go_under_the_pipelines_prefix_by_execution(steps):
    outputs = steps["Preprocess"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert [o["OutputName"] for o in outputs] == ["train", "validation", "test"]
    for output in outputs:
        join = output["S3Output"]["S3Uri"]["Std:Join"]
        assert join == {
            "On": "/",
            "Values": [f"s3://{BUCKET}/sts/pipelines", {"Get": "Execution.PipelineExecutionId"}, "Preprocess", output["OutputName"]],
        }
        assert output["S3Output"]["LocalPath"] == f"/opt/ml/processing/{output['OutputName']}"


def test_training_step_uses_script_mode_from_the_code_asset(steps):
    args = steps["Train"]["Arguments"]
    assert args["HyperParameters"] == {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": f"s3://{BUCKET}/{CODE_PREFIX}sourcedir.tar.gz",
        "problem-type": "BinaryClassification",
    }
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in args["InputDataConfig"]}
    assert channels == {
        "train": {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
        "validation": {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['validation'].S3Output.S3Uri"},
    }
    assert args["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert args["ResourceConfig"]["VolumeKmsKeyId"] == placeholders.KMS_KEY_ARN
    assert args["OutputDataConfig"]["KmsKeyId"] == placeholders.KMS_KEY_ARN
    assert args["OutputDataConfig"]["S3OutputPath"]["Std:Join"]["Values"][2:] == ["Train", "model"]


def test_register_step_carries_metrics_baseline_and_serving_contract(steps):
    args = steps["RegisterModel"]["Arguments"]
    assert args["ModelPackageGroupName"] == "stsPackageGroup"
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    (container,) = args["InferenceSpecification"]["Containers"]
    assert container["Image"] == IMAGE
    # Served with network isolation by the scikit-learn image (pipeline_code/serving_env.py;
    # proven on the image's real serving stack in tests/serving/).
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_NO_INDEX": "1",
        "PYTHONPATH": "/opt/ml/model/code",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    quality = args["ModelMetrics"]["ModelQuality"]
    assert _joined_file(quality["Statistics"]) == ("Evaluate", "evaluation", "evaluation.json")
    assert _joined_file(quality["Constraints"]) == ("Baseline", "baseline", "constraints.json")
    drift = args["DriftCheckBaselines"]["ModelQuality"]
    assert _joined_file(drift["Statistics"]) == ("Baseline", "baseline", "statistics.json")
    assert _joined_file(drift["Constraints"]) == ("Baseline", "baseline", "constraints.json")
    data = args["DriftCheckBaselines"]["ModelDataQuality"]
    assert _joined_file(data["Statistics"]) == ("BaselineDataQuality", "data-quality-baseline", "statistics.json")
    assert _joined_file(data["Constraints"]) == ("BaselineDataQuality", "data-quality-baseline", "constraints.json")
    assert "text/csv" in args["InferenceSpecification"]["SupportedContentTypes"]


def test_no_experiment_is_created_and_no_job_names_are_fixed(definition):
    assert definition.get("PipelineExperimentConfig") is None
    text = json.dumps(definition)
    assert "TrainingJobName" not in text and "ProcessingJobName" not in text


def test_definition_is_deterministic_and_leaves_the_process_as_it_was(definition):
    before = dict(os.environ)
    again = build_training_definition(load_config(), CODE_PREFIX)
    assert json.dumps(again, sort_keys=False) == json.dumps(definition, sort_keys=False)
    assert dict(os.environ) == before
    assert logging.root.manager.disable == logging.NOTSET
    from sagemaker.core.telemetry import telemetry_logging

    assert telemetry_logging._send_telemetry_request.__name__ == "_no_telemetry"


def test_only_placeholders_stand_for_deploy_time_values(definition):
    text = json.dumps(definition)
    assert BUCKET in text and placeholders.ROLE_ARN in text and placeholders.KMS_KEY_ARN in text
    assert "${Token" not in text
    assert placeholders.substitute(definition, {p: "X" for p in placeholders.ALL}) != definition
    substituted = json.dumps(placeholders.substitute(definition, {BUCKET: "b", placeholders.ROLE_ARN: "r", placeholders.KMS_KEY_ARN: "k"}))
    assert placeholders.find_leftovers(substituted) == []


def _gets(value):
    from pipeline_graph import gets

    return list(gets(value))


def _joined_file(source: dict) -> tuple[str, str, str]:
    """(step, output, file) of a Std:Join(output S3Uri, file) metrics source."""
    join = source["S3Uri"]["Std:Join"]
    assert join["On"] == "/" and source["ContentType"] == "application/json"
    (uri, filename) = join["Values"]
    step, rest = uri["Get"].split(".", 2)[1:]
    output = rest.split("'")[1]
    return step, output, filename


def test_the_data_quality_baseline_gets_the_configured_drift_comparison():
    cfg = load_config({"DRIFT_THRESHOLD": "0.25", "DRIFT_METHOD": "Simple"})
    args = all_steps(build_training_definition(cfg, CODE_PREFIX))["BaselineDataQuality"]["Arguments"]
    arguments = args["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--comparison-threshold") + 1] == "0.25"
    assert arguments[arguments.index("--comparison-method") + 1] == "Simple"
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]}
    assert inputs["model"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["validation"] == {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['validation'].S3Output.S3Uri"}
