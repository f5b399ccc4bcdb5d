"""Helpers of the monitoring tests: a locally "deployed" monitoring stack without cdk synth: the monitoring
pipeline registered with a hand-written definition that has the same
interface as pipeline_code/monitoring.py (parameters, inputs, arguments,
output), the real processing_scripts/monitor.py as its code, and the stack
outputs the CLI reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import stscontracts
from processing_scripts.monitor import PROGRAM_FILES
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.deployer import record_path
from stsmon.localcloud.plan import StackRecord
from stsmon.localcloud.pipelines import pipeline_arn, write_pipeline
from stsmon.state import StateDir

REPO = Path(__file__).resolve().parents[3]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
BUCKET = "sts-artifacts"
PIPELINE = "stsPipelineMonitoring"
SCHEDULE = "sts-model-quality"
ENDPOINT = "sts-endpoint"
CAPTURE_URI = f"s3://{BUCKET}/sts/datacapture"
GROUND_TRUTH_URI = f"s3://{BUCKET}/sts/ground-truth"
BASELINE_URI = f"s3://{BUCKET}/sts/pipelines/abc/Baseline/baseline/constraints.json"
ROOT = "/opt/ml/processing"


def _get(name):
    return {"Get": f"Parameters.{name}"}


def monitoring_definition() -> dict:
    params = [
        {"Name": "WindowEnd", "Type": "String", "DefaultValue": ""},
        {"Name": "WindowHours", "Type": "Integer", "DefaultValue": 1},
        {"Name": "LabelDelayHours", "Type": "Integer", "DefaultValue": 0},
        {"Name": "MinLabelCoverage", "Type": "Float", "DefaultValue": 0.0},
        {"Name": "PublishCloudWatch", "Type": "String", "DefaultValue": "true"},
        {"Name": "BaselineConstraintsUri", "Type": "String", "DefaultValue": BASELINE_URI},
    ]
    inputs = [
        ("code", f"s3://{BUCKET}/sts/code/abc/", f"{ROOT}/input/code"),
        ("baseline", _get("BaselineConstraintsUri"), f"{ROOT}/input/baseline"),
    ]
    args = [
        "--capture-uri", f"{CAPTURE_URI}/{ENDPOINT}", "--ground-truth-uri", GROUND_TRUTH_URI,
        "--region", "us-east-1", "--download-dir", f"{ROOT}/window",
        "--baseline-dir", f"{ROOT}/input/baseline", "--output-dir", f"{ROOT}/output",
        "--exit-message-file", "/opt/ml/output/message",
        "--execution-time", {"Get": "Execution.StartDateTime"},
        {"Std:Join": {"On": "", "Values": ["--window-end=", _get("WindowEnd")]}},
        "--window-hours", _get("WindowHours"), "--label-delay-hours", _get("LabelDelayHours"),
        "--min-label-coverage", _get("MinLabelCoverage"), "--endpoint-name", ENDPOINT,
        "--schedule-name", SCHEDULE, "--namespace", "stsmodelmonitor",
        "--publish-cloudwatch", _get("PublishCloudWatch"), "--problem-type", "auto",
    ]
    output_uri = {"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}/sts/monitoring/{SCHEDULE}",
                                                     {"Get": "Execution.PipelineExecutionId"}]}}
    step = {
        "Name": "MonitorModelQuality",
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}},
            "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", f"{ROOT}/input/code/monitor.py"],
                                 "ContainerArguments": args},
            "RoleArn": "arn:aws:iam::000000000000:role/sts-sagemaker",
            "ProcessingInputs": [
                {"InputName": n, "S3Input": {"S3Uri": uri, "LocalPath": path, "S3DataType": "S3Prefix", "S3InputMode": "File"}}
                for n, uri, path in inputs
            ],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring", "S3Output": {
                "S3Uri": output_uri, "LocalPath": f"{ROOT}/output", "S3UploadMode": "EndOfJob"}}]},
        },
    }
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": params, "PipelineExperimentConfig": None, "Steps": [step]}


@dataclass
class MonitoringDeployment:
    state: StateDir
    capture_root: Path  # local folder of CAPTURE_URI
    ground_truth_root: Path
    baseline_dir: Path

    def write_constraints(self, accuracy=0.8, f1=0.8, auc=None) -> None:
        from stsmon.monitoring.synthetic import write_constraints

        write_constraints(self.baseline_dir, accuracy=accuracy, f1=f1, auc=auc)


def deploy_monitoring(root: Path) -> MonitoringDeployment:
    state = StateDir(root / "state")
    env = LocalEnvironment()
    code = state.s3_path(f"s3://{BUCKET}/sts/code/abc/")
    code.mkdir(parents=True)
    for name in PROGRAM_FILES:
        (code / name).write_bytes((REPO / "processing_scripts" / name).read_bytes())
    for name, path in stscontracts.package_files():  # shipped next to the scripts, as the step-code asset has it
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_bytes(path.read_bytes())
    write_pipeline(state, {"PipelineName": PIPELINE, "PipelineArn": pipeline_arn(env, PIPELINE),
                           "PipelineDefinition": monitoring_definition(), "Region": env.region, "Account": env.account})
    outputs = {"MonitoringPipelineName": PIPELINE, "MonitoringScheduleName": SCHEDULE, "EndpointName": ENDPOINT,
               "DataCaptureUri": CAPTURE_URI, "GroundTruthUri": GROUND_TRUTH_URI,
               "MonitoringOutputUri": f"s3://{BUCKET}/sts/monitoring/{SCHEDULE}"}
    record = StackRecord(stack_name="sts-monitoring", artifact_id="sts-monitoring", region=env.region, account=env.account,
                         deployed_at="2026-11-27T12:00:00Z", assembly="", parameters={}, resources={}, order=[],
                         outputs=outputs, exports={}, imports=[])
    path = record_path(state, "sts-monitoring")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json()))
    baseline = state.s3_path(BASELINE_URI).parent
    deployment = MonitoringDeployment(state, state.s3_path(CAPTURE_URI), state.s3_path(GROUND_TRUTH_URI), baseline)
    deployment.write_constraints()
    return deployment




def run_monitor(clients, window_end: str, **parameters):
    """``stsmon monitor run``'s library call, through ``clients``: the monitoring pipeline for the hour before
    ``window_end``, followed to its end, its result and the sts-* alarms read back."""
    import time

    from stsmon.monitoring import runs

    params = {**runs.window_parameters(window_end, now=clients.clock.now()), **parameters}
    return runs.run_now(clients, PIPELINE, params, alarm_prefixes=("sts-",), sleep=time.sleep)


def published_points(state: StateDir, run) -> int:
    """How many metric data points the run's jobs published to the local CloudWatch (PutMetricData)."""
    from stsmon.monitoring.metrics import MetricStore

    return sum(len(points) for points in MetricStore(state).published_by(f"{run.execution_id}#").values())
