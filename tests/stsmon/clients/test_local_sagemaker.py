"""The local SageMaker client: executions start in the background and are followed with
describe_pipeline_execution / list_pipeline_execution_steps like on AWS; stop and Ctrl-C record
Stopped; refusals are SageMaker's error codes. Every call is checked against botocore's model."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from stsmon import executions
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.pipelines import pipeline_arn, write_pipeline
from stsmon.state import StateDir

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
ROLE = "arn:aws:iam::000000000000:role/sts-sagemaker"
WAIT = """
import pathlib, sys, time
out = pathlib.Path(sys.argv[1])
(out / "started").write_text("yes")
time.sleep(float(sys.argv[2]))
(out / "done.json").write_text('{"ok": 1}')
"""


def deploy(state: StateDir, seconds: float) -> None:
    env = LocalEnvironment()
    code = state.s3_path("s3://bkt/code/")
    code.mkdir(parents=True)
    (code / "wait.py").write_text(WAIT)
    step = {"Name": "Wait", "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/wait.py"],
                             "ContainerArguments": ["/opt/ml/processing/out", {"Get": "Parameters.Seconds"}]},
        "RoleArn": ROLE,
        "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": "s3://bkt/code/", "LocalPath": "/opt/ml/processing/code",
                                                               "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": "s3://bkt/out", "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]}}}
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "Seconds", "Type": "Float", "DefaultValue": seconds}],
                  "Steps": [step]}
    write_pipeline(state, {"PipelineName": "waitPipeline", "PipelineArn": pipeline_arn(env, "waitPipeline"),
                           "PipelineDefinition": definition, "RoleArn": ROLE, "Region": env.region, "Account": env.account,
                           "CreationTime": "2033-05-17T12:00:00Z", "LastModifiedTime": "2033-05-17T12:00:00Z"})


def job_running(sm, arn) -> bool:
    steps = executions.steps(sm, arn)
    return [s["StepStatus"] for s in steps] == ["Executing"] and "ProcessingJob" in steps[0]["Metadata"]


def until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def sm(tmp_path, local_clients):
    state = StateDir(tmp_path / "state")
    deploy(state, 60)
    clients = local_clients(state)
    clients.state_for_test = state
    return clients.sagemaker


def test_an_execution_runs_in_the_background_and_stop_records_stopped(sm):
    arn = sm.start_pipeline_execution(PipelineName="waitPipeline", PipelineExecutionDisplayName="bg")["PipelineExecutionArn"]
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    until(lambda: job_running(sm, arn))
    (step,) = executions.steps(sm, arn)
    job = sm.describe_processing_job(ProcessingJobName=step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
    assert job["ProcessingJobStatus"] == "InProgress" and job["RoleArn"] == ROLE
    assert job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://bkt/out"
    assert sm.stop_pipeline_execution(PipelineExecutionArn=arn) == {"PipelineExecutionArn": arn}
    execution, steps = executions.wait(sm, arn, poll_seconds=0.05, sleep=time.sleep, timeout_seconds=30)
    assert execution["PipelineExecutionStatus"] == "Stopped"
    assert [(s["StepName"], s["StepStatus"], s["StepType"]) for s in steps] == [("Wait", "Stopped", "Processing")]
    (summary,) = sm.list_pipeline_executions(PipelineName="waitPipeline")["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionArn"] == arn and summary["PipelineExecutionDisplayName"] == "bg"
    with pytest.raises(ClientError) as again:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert again.value.response["Error"]["Code"] == "ValidationException"


def test_closing_the_clients_on_ctrl_c_stops_what_the_command_started(tmp_path, local_clients):
    state = StateDir(tmp_path / "state")
    deploy(state, 60)
    clients = local_clients(state)
    arn = clients.sagemaker.start_pipeline_execution(PipelineName="waitPipeline")["PipelineExecutionArn"]
    until(lambda: job_running(clients.sagemaker, arn))
    with pytest.raises(KeyboardInterrupt):
        with clients:
            raise KeyboardInterrupt
    reread = local_clients(state).sagemaker
    assert reread.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Stopped"
    assert not state.s3_path("s3://bkt/out/done.json").exists()  # a stopped job's outputs are not uploaded


def test_a_finished_execution_reports_its_steps_and_parameters(tmp_path, local_clients):
    state = StateDir(tmp_path / "state")
    deploy(state, 0)
    sm = local_clients(state).sagemaker
    arn = executions.start(sm, "waitPipeline", {"Seconds": "0.1"})
    execution, steps = executions.wait(sm, arn, poll_seconds=0.05, sleep=time.sleep, timeout_seconds=60)
    assert execution["PipelineExecutionStatus"] == "Succeeded"
    assert execution["CreationTime"] <= execution["LastModifiedTime"]
    assert sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"] == [
        {"Name": "Seconds", "Value": "0.1"}]
    assert state.s3_path("s3://bkt/out/done.json").is_file()
    job = sm.describe_processing_job(ProcessingJobName=steps[0]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
    assert job["ProcessingJobStatus"] == "Completed" and job["ProcessingEndTime"] >= job["ProcessingStartTime"]
    assert "Wait" in sm.describe_pipeline(PipelineName="waitPipeline")["PipelineDefinition"]


@pytest.mark.parametrize("call, code, message", [
    (lambda sm: sm.start_pipeline_execution(PipelineName="nope"), "ResourceNotFound", "Pipeline 'nope' does not exist"),
    (lambda sm: sm.start_pipeline_execution(PipelineName="waitPipeline", PipelineParameters=[{"Name": "X", "Value": "1"}]),
     "ValidationException", "unknown pipeline parameter"),
    (lambda sm: sm.start_pipeline_execution(PipelineName="waitPipeline", PipelineParameters=[{"Name": "Seconds", "Value": "soon"}]),
     "ValidationException", "not a valid Float"),
    (lambda sm: sm.describe_pipeline_execution(
        PipelineExecutionArn="arn:aws:sagemaker:us-east-1:000000000000:pipeline/waitpipeline/execution/none"),
     "ResourceNotFound", "does not exist"),
    (lambda sm: sm.describe_processing_job(ProcessingJobName="nope"), "ValidationException", "Could not find"),
    (lambda sm: sm.describe_model_package(ModelPackageName="arn:aws:sagemaker:us-east-1:000000000000:model-package/g/1"),
     "ValidationException", "does not exist"),
    (lambda sm: sm.describe_endpoint(EndpointName="sts-endpoint"), "ValidationException", "Could not find endpoint"),
])
def test_refusals_are_sagemakers_error_codes(sm, call, code, message):
    with pytest.raises(ClientError) as refused:
        call(sm)
    assert refused.value.response["Error"]["Code"] == code
    assert message in refused.value.response["Error"]["Message"]


def test_model_packages_through_the_client(tmp_path, local_clients, clock):
    """The local registry behind list/describe/update/delete_model_package: SageMaker's shapes (datetimes,
    enums) and a package approved, listed newest first, then deleted."""
    from stsmon.localcloud.registry import Registry

    state = StateDir(tmp_path / "state")
    registry = Registry(state.registry_db, env=LocalEnvironment(), clock=clock)
    registry.create_model_package_group(ModelPackageGroupName="stsPackageGroup")
    spec = {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bkt/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
    arns = [registry.create_model_package(ModelPackageGroupName="stsPackageGroup", InferenceSpecification=spec)["ModelPackageArn"]
            for _ in range(2)]
    registry.close()
    sm = local_clients(state).sagemaker
    listed = sm.list_model_packages(ModelPackageGroupName="stsPackageGroup", SortBy="CreationTime", SortOrder="Descending")
    assert [p["ModelPackageArn"] for p in listed["ModelPackageSummaryList"]] == arns[::-1]
    assert sm.describe_model_package(ModelPackageName=arns[0])["ModelApprovalStatus"] == "PendingManualApproval"
    sm.update_model_package(ModelPackageArn=arns[0], ModelApprovalStatus="Approved")
    described = sm.describe_model_package(ModelPackageName=arns[0])
    assert described["ModelApprovalStatus"] == "Approved" and described["LastModifiedTime"].tzinfo is not None
    sm.delete_model_package(ModelPackageName=arns[1])
    assert [p["ModelPackageArn"] for p in sm.list_model_packages(ModelPackageGroupName="stsPackageGroup")["ModelPackageSummaryList"]] == arns[:1]
