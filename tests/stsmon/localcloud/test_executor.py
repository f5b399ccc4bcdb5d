"""The pipeline executor on hand-written definition fragments."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from stsmon.errors import StsmonError
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.executions import describe_execution, list_executions
from stsmon.localcloud.executor import ExecutionError, start_execution
from stsmon.localcloud.pipelines import pipeline_arn, write_pipeline
from stsmon.localcloud.registry import Registry
from stsmon.state import StateDir

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
BUCKET = "bucket"
CODE = f"s3://{BUCKET}/code"

SCRIPTS = {
    # Copies every input file to the output, adding a line; fails on demand.
    "prep.py": """
        import argparse, os, pathlib, sys
        p = argparse.ArgumentParser()
        p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--fail", default="no")
        p.add_argument("--sleep", type=float, default=0)
        a = p.parse_args()
        if a.sleep:
            import time; time.sleep(a.sleep)
        if a.fail == "yes":
            print("some progress output")
            print("Traceback (most recent call last):", file=sys.stderr)
            print("error: bad line 7 in input.tsv", file=sys.stderr)
            sys.exit(2)
        for f in pathlib.Path(a.input).rglob("*"):
            if f.is_file():
                out = pathlib.Path(a.output) / (f.stem + ".csv")
                out.write_text(f.read_text() + "prepped\\n")
    """,
    # Script-mode training: channels, hyperparameters, SM_* variables.
    "train.py": """
        import argparse, json, os, pathlib
        p = argparse.ArgumentParser()
        p.add_argument("--epochs", type=int); p.add_argument("--problem-type")
        a = p.parse_args()
        train = pathlib.Path(os.environ["SM_CHANNEL_TRAIN"])
        model = pathlib.Path(os.environ["SM_MODEL_DIR"])
        rows = sum(len(f.read_text().splitlines()) for f in train.rglob("*.csv"))
        (model / "model.json").write_text(json.dumps({
            "rows": rows, "epochs": a.epochs, "problem_type": a.problem_type,
            "channels": json.loads(os.environ["SM_CHANNELS"]), "cwd": os.getcwd(),
            "helper": __import__("helper").VALUE}))
        (model / "code").mkdir(); (model / "code" / "inference.py").write_text("# serve")
        print("train-metric: accuracy=0.875")
    """,
    "helper.py": "VALUE = 42\n",
    # What a job sees: its arguments (execution variables resolved) and the AWS environment; an exit message.
    "probe.py": """
        import argparse, json, os, pathlib, sys
        p = argparse.ArgumentParser()
        p.add_argument("--start"); p.add_argument("--output"); p.add_argument("--message-file"); p.add_argument("--fail")
        a = p.parse_args()
        env = {k: os.environ.get(k) for k in ("AWS_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDWATCH",
                                              "AWS_ACCESS_KEY_ID")}
        (pathlib.Path(a.output) / "seen.json").write_text(json.dumps({"start": a.start, "env": env}))
        pathlib.Path(a.message_file).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.message_file).write_text("window Failed: " + "x" * 2000 if a.fail == "yes" else "all good")
        sys.exit(3 if a.fail == "yes" else 0)
    """,
    # Evaluation: reads model.tar.gz, writes evaluation.json with the requested accuracy.
    "evaluate.py": """
        import argparse, json, pathlib, tarfile
        p = argparse.ArgumentParser()
        p.add_argument("--model-dir"); p.add_argument("--output-dir"); p.add_argument("--accuracy", type=float)
        a = p.parse_args()
        with tarfile.open(pathlib.Path(a.model_dir) / "model.tar.gz") as t:
            model = json.load(t.extractfile("model.json"))
        report = {"binary_classification_metrics": {"accuracy": {"value": a.accuracy, "standard_deviation": 0.01}},
                  "rows": model["rows"]}
        (pathlib.Path(a.output_dir) / "evaluation.json").write_text(json.dumps(report))
    """,
}


def processing(name, script, inputs, outputs, args=(), **extra):
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}},
            "AppSpecification": {
                "ImageUri": IMAGE,
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"],
                "ContainerArguments": list(args),
            },
            "RoleArn": "arn:aws:iam::000000000000:role/r",
            "ProcessingInputs": [
                {"InputName": "code", "S3Input": {"S3Uri": f"{CODE}/{script}", "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix", "S3InputMode": "File"}},
                *[
                    {"InputName": n, "S3Input": {"S3Uri": uri, "LocalPath": path, "S3DataType": "S3Prefix", "S3InputMode": "File"}}
                    for n, uri, path in inputs
                ],
            ],
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": n, "S3Output": {"S3Uri": uri, "LocalPath": path, "S3UploadMode": "EndOfJob"}} for n, uri, path in outputs]
            },
        },
        **extra,
    }


def out_uri(step, name):
    return {"Std:Join": {"On": "/", "Values": ["s3:/", BUCKET, "pipelines", {"Get": "Execution.PipelineExecutionId"}, step, name]}}


def full_definition():
    """Preprocess -> Train -> Evaluate -> Condition(accuracy >= Threshold) -> [Register] else [Fail]."""
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputData", "Type": "String", "DefaultValue": f"s3://{BUCKET}/input"},
            {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.7},
            {"Name": "Accuracy", "Type": "Float", "DefaultValue": 0.8},
            {"Name": "Epochs", "Type": "Integer", "DefaultValue": 3},
            {"Name": "ApprovalStatus", "Type": "String", "DefaultValue": "Approved"},
        ],
        "Steps": [
            processing(
                "Preprocess",
                "prep.py",
                [("data", {"Get": "Parameters.InputData"}, "/opt/ml/processing/input/data")],
                [("train", out_uri("Preprocess", "train"), "/opt/ml/processing/train")],
                ["--input", "/opt/ml/processing/input/data", "--output=/opt/ml/processing/train"],
            ),
            {
                "Name": "Train",
                "Type": "Training",
                "Arguments": {
                    "AlgorithmSpecification": {
                        "TrainingImage": IMAGE,
                        "TrainingInputMode": "File",
                        "MetricDefinitions": [{"Name": "train:accuracy", "Regex": "accuracy=([0-9.]+)"}],
                    },
                    "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
                    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
                    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                    "RoleArn": "arn:aws:iam::000000000000:role/r",
                    "InputDataConfig": [
                        {
                            "ChannelName": "train",
                            "DataSource": {
                                "S3DataSource": {
                                    "S3DataType": "S3Prefix",
                                    "S3Uri": {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                                    "S3DataDistributionType": "FullyReplicated",
                                }
                            },
                        }
                    ],
                    "HyperParameters": {
                        "sagemaker_program": '"train.py"',
                        "sagemaker_submit_directory": f'"{CODE}/sourcedir.tar.gz"',
                        "sagemaker_region": '"us-east-1"',
                        "epochs": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Epochs"}]}},
                        "problem-type": '"BinaryClassification"',
                    },
                },
            },
            processing(
                "Evaluate",
                "evaluate.py",
                [("model", {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "/opt/ml/processing/model")],
                [("evaluation", out_uri("Evaluate", "evaluation"), "/opt/ml/processing/evaluation")],
                ["--model-dir", "/opt/ml/processing/model", "--output-dir", "/opt/ml/processing/evaluation", "--accuracy", {"Get": "Parameters.Accuracy"}],
                PropertyFiles=[{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}],
            ),
            {
                "Name": "CheckQuality",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "GreaterThanOrEqualTo",
                            "LeftValue": {
                                "Std:JsonGet": {
                                    "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                                    "Path": "binary_classification_metrics.accuracy.value",
                                }
                            },
                            "RightValue": {"Get": "Parameters.Threshold"},
                        }
                    ],
                    "IfSteps": [
                        {
                            "Name": "RegisterModel",
                            "Type": "RegisterModel",
                            "Arguments": {
                                "ModelPackageGroupName": "g",
                                "ModelApprovalStatus": {"Get": "Parameters.ApprovalStatus"},
                                "InferenceSpecification": {
                                    "Containers": [{"Image": IMAGE, "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}],
                                    "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"],
                                },
                                "ModelMetrics": {
                                    "ModelQuality": {
                                        "Statistics": {
                                            "ContentType": "application/json",
                                            "S3Uri": {
                                                "Std:Join": {
                                                    "On": "/",
                                                    "Values": [
                                                        {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"},
                                                        "evaluation.json",
                                                    ],
                                                }
                                            },
                                        }
                                    }
                                },
                                "CustomerMetadataProperties": {"TrainingJob": {"Get": "Steps.Train.TrainingJobName"}},
                            },
                        }
                    ],
                    "ElseSteps": [
                        {
                            "Name": "QualityGateFailed",
                            "Type": "Fail",
                            "Arguments": {
                                "ErrorMessage": {
                                    "Std:Join": {
                                        "On": " ",
                                        "Values": [
                                            "accuracy",
                                            {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}, "Path": "binary_classification_metrics.accuracy.value"}},
                                            "is below",
                                            {"Get": "Parameters.Threshold"},
                                        ],
                                    }
                                }
                            },
                        }
                    ],
                },
            },
        ],
    }


@pytest.fixture
def state(tmp_path, clock):
    st = StateDir(tmp_path / "state")
    code = st.s3_path(f"{CODE}/")
    code.mkdir(parents=True)
    for name, text in SCRIPTS.items():
        (code / name).write_text(textwrap.dedent(text))
    with tarfile.open(code / "sourcedir.tar.gz", "w:gz") as tar:
        tar.add(code / "train.py", arcname="train.py")
        tar.add(code / "helper.py", arcname="helper.py")
    data = st.s3_path(f"s3://{BUCKET}/input")
    data.mkdir(parents=True)
    (data / "a.tsv").write_text("one\ntwo\n")
    (data / "b.tsv").write_text("three\n")
    Registry(st.registry_db, clock=clock).create_model_package_group(ModelPackageGroupName="g")
    return st


def register(state, definition, name="p"):
    env = LocalEnvironment()
    write_pipeline(
        state,
        {"PipelineName": name, "PipelineArn": pipeline_arn(env, name), "PipelineDefinition": definition, "Region": env.region, "Account": env.account},
    )


def steps_by_name(record):
    return {s["StepName"]: s for s in record["Steps"]}


def test_full_pipeline_registers_a_package_from_property_references(state, clock):
    register(state, full_definition())
    events = []
    record = start_execution(state, "p", {"Epochs": "5"}, on_event=lambda kind, rec: events.append((kind, rec.get("StepName"), rec.get("StepStatus") or rec.get("PipelineExecutionStatus"))), clock=clock)
    assert record["PipelineExecutionStatus"] == "Succeeded", record
    steps = steps_by_name(record)
    assert {n: s["StepStatus"] for n, s in steps.items()} == {
        "Preprocess": "Succeeded",
        "Train": "Succeeded",
        "Evaluate": "Succeeded",
        "CheckQuality": "Succeeded",
        "RegisterModel": "Succeeded",
    }
    assert record["NotExecuted"] == ["QualityGateFailed"]
    assert steps["CheckQuality"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert ("step", "Train", "Executing") in events and events[-1] == ("execution", None, "Succeeded")

    exec_id = record["PipelineExecutionId"]
    train_out = state.s3_path(f"s3://{BUCKET}/pipelines/{exec_id}/Preprocess/train")
    assert sorted(p.name for p in train_out.iterdir()) == ["a.csv", "b.csv"]

    model_uri = steps["Train"]["Properties"]["ModelArtifacts"]["S3ModelArtifacts"]
    job = steps["Train"]["Properties"]["TrainingJobName"]
    assert model_uri == f"s3://{BUCKET}/models/{job}/output/model.tar.gz"
    with tarfile.open(state.s3_path(model_uri)) as tar:
        assert sorted(tar.getnames()) == ["code", "code/inference.py", "model.json"]
        model = json.load(tar.extractfile("model.json"))
    assert model["rows"] == 5 and model["epochs"] == 5 and model["problem_type"] == "BinaryClassification"
    assert model["channels"] == ["train"] and model["helper"] == 42 and model["cwd"].endswith("opt/ml/code")
    assert steps["Train"]["Properties"]["FinalMetricDataList"][0]["Value"] == 0.875

    reg = Registry(state.registry_db)
    (pkg,) = reg.list_model_packages(ModelPackageGroupName="g")["ModelPackageSummaryList"]
    described = reg.describe_model_package(ModelPackageName=pkg["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_uri
    stats = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert stats == f"s3://{BUCKET}/pipelines/{exec_id}/Evaluate/evaluation/evaluation.json"
    assert json.loads(state.s3_path(stats).read_text())["binary_classification_metrics"]["accuracy"]["value"] == 0.8
    assert described["CustomerMetadataProperties"] == {"TrainingJob": job}
    assert steps["RegisterModel"]["Metadata"] == {"RegisterModel": {"Arn": pkg["ModelPackageArn"]}}

    logs = Path(steps["Preprocess"]["LogDir"])
    assert "prep.py" in (logs / "stdout.log").read_text()
    assert describe_execution(state, "p", exec_id)["PipelineExecutionStatus"] == "Succeeded"


def test_condition_false_branch_runs_the_fail_step(state, clock):
    register(state, full_definition())
    record = start_execution(state, "p", {"Threshold": "0.9"}, clock=clock)
    assert record["PipelineExecutionStatus"] == "Failed"
    assert record["FailureReason"] == "accuracy 0.8 is below 0.9"
    steps = steps_by_name(record)
    assert steps["CheckQuality"]["Metadata"] == {"Condition": {"Outcome": "False"}}
    assert steps["QualityGateFailed"]["StepStatus"] == "Failed"
    assert "RegisterModel" not in steps and record["NotExecuted"] == ["RegisterModel"]
    assert Registry(state.registry_db).list_model_packages()["ModelPackageSummaryList"] == []


def test_a_failing_script_fails_its_step_with_stderr_and_stops_only_its_dependents(state, clock):
    definition = full_definition()
    definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"] += ["--fail", "yes"]
    definition["Steps"].append(
        processing(
            "Independent",
            "prep.py",
            [("data", f"s3://{BUCKET}/input", "/opt/ml/processing/input/data")],
            [("out", f"s3://{BUCKET}/independent", "/opt/ml/processing/out")],
            ["--input", "/opt/ml/processing/input/data", "--output", "/opt/ml/processing/out"],
        )
    )
    register(state, definition)
    record = start_execution(state, "p", clock=clock)
    steps = steps_by_name(record)
    assert record["PipelineExecutionStatus"] == "Failed"
    assert steps["Preprocess"]["StepStatus"] == "Failed"
    reason = steps["Preprocess"]["FailureReason"]
    assert reason.startswith("Traceback (most recent call last):\nerror: bad line 7 in input.tsv (exit code 2; logs:")
    assert "some progress output" not in reason
    assert record["FailureReason"].startswith("Step Preprocess failed: Traceback")
    assert steps["Independent"]["StepStatus"] == "Succeeded"
    assert set(record["NotExecuted"]) == {"Train", "Evaluate", "CheckQuality", "RegisterModel", "QualityGateFailed"}
    assert not state.s3_path(f"s3://{BUCKET}/pipelines").exists()


def test_depends_on_orders_steps_without_data_references(state, clock):
    first = processing("First", "prep.py", [("d", f"s3://{BUCKET}/input", "/opt/ml/processing/input/data")], [("o", f"s3://{BUCKET}/first", "/opt/ml/processing/o")], ["--input", "/opt/ml/processing/input/data", "--output", "/opt/ml/processing/o", "--sleep", "0.5"])
    second = processing("Second", "prep.py", [("d", f"s3://{BUCKET}/first", "/opt/ml/processing/input/data")], [("o", f"s3://{BUCKET}/second", "/opt/ml/processing/o")], ["--input", "/opt/ml/processing/input/data", "--output", "/opt/ml/processing/o"], DependsOn=["First"])
    register(state, {"Version": "2020-12-01", "Parameters": [], "Steps": [second, first]})
    record = start_execution(state, "p", clock=clock)
    assert record["PipelineExecutionStatus"] == "Succeeded"
    assert (state.s3_path(f"s3://{BUCKET}/second") / "a.csv").read_text() == "one\ntwo\nprepped\nprepped\n"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["Steps"].append({"Name": "Tune", "Type": "Tuning", "Arguments": {}}), "step Tune has type 'Tuning'"),
        (
            lambda d: d["Steps"][0]["Arguments"]["AppSpecification"].update(ImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/custom:latest"),
            "image '123456789012.dkr.ecr.us-east-1.amazonaws.com/custom:latest' cannot run locally",
        ),
        (
            lambda d: d["Steps"][1]["Arguments"]["AlgorithmSpecification"].update(TrainingImage=IMAGE.replace("1.9-0", "1.2-1")),
            "runs scikit-learn 1.2, but this machine has scikit-learn 1.9",
        ),
        (
            lambda d: d["Steps"][0]["Arguments"]["AppSpecification"].update(ImageUri=IMAGE.replace("683313688378", "111111111111")),
            "account 111111111111 does not publish sagemaker-scikit-learn in us-east-1",
        ),
        (lambda d: d["Steps"][1].update(DependsOn=["Nope"]), "step Train refers to unknown step\\(s\\): Nope"),
    ],
)
def test_unsupported_steps_and_images_are_refused_before_anything_runs(state, mutate, message, clock):
    definition = full_definition()
    mutate(definition)
    register(state, definition)
    with pytest.raises(ExecutionError, match=message):
        start_execution(state, "p", clock=clock)
    assert not (state.executions / "p").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"Nope": "1"}, "unknown pipeline parameter\\(s\\): Nope"),
        ({"Epochs": "many"}, "Epochs='many': not a valid Integer"),
        ({"Threshold": "high", "Epochs": "1.5"}, "Threshold='high': not a valid Float; Epochs='1.5'"),
    ],
)
def test_bad_parameters_are_refused(state, overrides, message, clock):
    register(state, full_definition())
    with pytest.raises(StsmonError, match=message):
        start_execution(state, "p", overrides, clock=clock)


def test_missing_input_data_fails_the_step_clearly(state, clock):
    register(state, full_definition())
    record = start_execution(state, "p", {"InputData": f"s3://{BUCKET}/nothing-here"}, clock=clock)
    reason = steps_by_name(record)["Preprocess"]["FailureReason"]
    assert reason.startswith(f"input data: no S3 objects found under s3://{BUCKET}/nothing-here")


def test_bad_property_reference_fails_the_step_naming_it(state, clock):
    definition = full_definition()
    channel = definition["Steps"][1]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    channel["S3Uri"] = {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['nope'].S3Output.S3Uri"}
    register(state, definition)
    record = start_execution(state, "p", clock=clock)
    reason = steps_by_name(record)["Train"]["FailureReason"]
    assert reason == "Steps.Preprocess.ProcessingOutputConfig.Outputs.nope: no element named 'nope'"


KILLABLE = """
import sys
from pathlib import Path
from stsmon.state import StateDir
from datetime import datetime, timezone
from stsmon.clock import FixedClock
from stsmon.localcloud.executor import start_execution
start_execution(StateDir(Path(sys.argv[1])), "p", {"Threshold": "0.1"},
                clock=FixedClock(datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc)))
"""


def step_scripts(state: StateDir, but: int | None = None) -> list[str]:
    """Command lines of the running processes that work in ``state`` (the step scripts), except ``but``."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if process.info["pid"] != but and str(state.root) in cmdline:
            found.append(cmdline)
    return found


def until(predicate, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_killing_the_executor_mid_run_leaves_consistent_state_and_the_next_run_works(state, subprocess_env, clock):
    definition = full_definition()
    definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"] += ["--sleep", "30"]
    register(state, definition)
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(state.root)], env=subprocess_env)
    try:
        deadline = time.monotonic() + 60
        records = []
        while time.monotonic() < deadline and proc.poll() is None:
            records = list((state.executions / "p").glob("*/execution.json")) if (state.executions / "p").exists() else []
            if records and '"Executing"' in records[0].read_text() and "Preprocess" in records[0].read_text():
                break
            time.sleep(0.2)
        assert records, "the execution never started"
        assert until(lambda: step_scripts(state, but=proc.pid)), "the step's script never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The step's script (sleeping 30 s) died with its executor (no orphan keeps running).
    assert until(lambda: not step_scripts(state), timeout=10), step_scripts(state)

    (stale,) = list_executions(state, "p")
    assert stale["PipelineExecutionStatus"] == "Failed"
    assert "executor process ended" in stale["FailureReason"]
    assert steps_by_name(stale)["Preprocess"]["StepStatus"] == "Failed"
    assert Registry(state.registry_db).list_model_packages()["ModelPackageSummaryList"] == []

    fast = copy.deepcopy(full_definition())
    register(state, fast)
    record = start_execution(state, "p", clock=clock)
    assert record["PipelineExecutionStatus"] == "Succeeded"
    (pkg,) = Registry(state.registry_db).list_model_packages()["ModelPackageSummaryList"]
    assert pkg["ModelPackageVersion"] == 1
    assert [r["PipelineExecutionStatus"] for r in list_executions(state, "p")] == ["Succeeded", "Failed"]


@pytest.mark.slow
def test_stop_running_executions_stops_the_scripts_and_records_stopped(state, subprocess_env):
    from stsmon.localcloud.executions import stop_running_executions

    definition = full_definition()
    definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"] += ["--sleep", "60"]
    register(state, definition)
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(state.root)], env=subprocess_env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            records = list((state.executions / "p").glob("*/execution.json")) if (state.executions / "p").exists() else []
            if records and "LogDir" in records[0].read_text():
                break
            time.sleep(0.2)
        stopped = stop_running_executions(state, "p")
        assert proc.wait(timeout=30) != 0  # KeyboardInterrupt after recording Stopped
    finally:
        if proc.poll() is None:
            proc.kill()
    (record,) = list_executions(state, "p")
    assert stopped == [record["PipelineExecutionId"]]
    assert record["PipelineExecutionStatus"] == "Stopped"
    assert steps_by_name(record)["Preprocess"]["StepStatus"] == "Stopped"
    assert "Train" in record["NotExecuted"]


@pytest.mark.slow
def test_more_sigterms_while_stopping_do_not_leave_the_execution_executing(state, subprocess_env):
    """`stsmon cleanup` sends SIGTERM once per running execution, so a process running several gets more than
    one. The first stops the execution; the next ones used to interrupt that stop half way (a second
    KeyboardInterrupt in its `finally`, or inside a finalizer: an "Exception ignored" warning), leaving the
    record Executing for ever."""
    definition = full_definition()
    definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"] += ["--sleep", "60"]
    register(state, definition)
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(state.root)], env=subprocess_env,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert until(lambda: step_scripts(state, but=proc.pid)), "the step's script never started"
        while proc.poll() is None:  # SIGTERM after SIGTERM until the executor is gone
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            time.sleep(0.01)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    (record,) = list_executions(state, "p")
    assert record["PipelineExecutionStatus"] == "Stopped", stderr[-3000:]
    assert steps_by_name(record)["Preprocess"]["StepStatus"] == "Stopped"
    assert "During handling of the above exception" not in stderr and "Exception ignored" not in stderr, stderr


@pytest.mark.parametrize("fail", ["no", "yes"])
def test_a_job_gets_execution_variables_aws_endpoints_and_its_exit_message_is_kept(state, clock, fail):
    """Execution.StartDateTime in SageMaker's timestamp form (ISO-8601 UTC, milliseconds, Z) from the clock;
    the job's AWS configuration (region, the execution's job endpoint, credentials) in its environment, as a
    container gets its role; /opt/ml/output/message kept as the job's ExitMessage (first 1 KB,
    docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html); a failed job's outputs are not uploaded."""
    step = processing("Probe", "probe.py", [], [("out", f"s3://{BUCKET}/probe", "/opt/ml/processing/out")],
                      ["--start", {"Get": "Execution.StartDateTime"}, "--output", "/opt/ml/processing/out",
                       "--message-file", "/opt/ml/output/message", "--fail", fail])
    register(state, {"Version": "2020-12-01", "Parameters": [], "Steps": [step]})
    record = start_execution(state, "p", clock=clock)
    probe = steps_by_name(record)["Probe"]
    if fail == "no":
        assert record["PipelineExecutionStatus"] == "Succeeded"
        seen = json.loads(state.s3_path(f"s3://{BUCKET}/probe/seen.json").read_text())
        assert re.fullmatch(r"2033-05-17T12:30:00\.\d{3}Z", seen["start"]), seen  # the clock's now at the start
        assert seen["env"]["AWS_REGION"] == "us-east-1" and seen["env"]["AWS_ACCESS_KEY_ID"]
        assert seen["env"]["AWS_ENDPOINT_URL_S3"].startswith("http://127.0.0.1:")
        assert seen["env"]["AWS_ENDPOINT_URL_CLOUDWATCH"] == seen["env"]["AWS_ENDPOINT_URL_S3"]
        assert probe["Properties"]["ExitMessage"] == "all good"
    else:
        assert record["PipelineExecutionStatus"] == "Failed" and probe["StepStatus"] == "Failed"
        assert len(probe["ExitMessage"].encode()) == 1024 and probe["ExitMessage"].startswith("window Failed: xxx")
        assert probe["FailureReason"].startswith("window Failed: xxx")  # the job's own reason, not its stderr
        assert not state.s3_path(f"s3://{BUCKET}/probe").exists()
