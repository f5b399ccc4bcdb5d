"""`stsmon train`: local runs from a deployed assembly, the run record, --target aws with Stubber,
and the end-to-end run on the full corpus (synth -> deploy -> train)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from stsmon import cli as cli_module
from stsmon.localcloud.assembly import Assembly
from stsmon.localcloud.deployer import LocalDeployer
from stsmon.localcloud.registry import Registry
from stsmon.state import StateDir

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
ROLE = "arn:aws:iam::000000000000:role/sts-sagemaker"

SCORE = """
import argparse, json, pathlib
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out")
a = p.parse_args()
lines = sum(len(f.read_text().splitlines()) for f in pathlib.Path(a.data).rglob("*") if f.is_file())
acc = min(1.0, lines / 10)
(pathlib.Path(a.out) / "evaluation.json").write_text(json.dumps(
    {"binary_classification_metrics": {"accuracy": {"value": acc, "standard_deviation": 0.0}}}))
(pathlib.Path(a.out) / "model.tar.gz").write_text("not really a model")
"""


def definition():
    code = "s3://${Bucket}/sts/code/score.py"
    out = {"Std:Join": {"On": "/", "Values": ["s3://${Bucket}/sts/pipelines", {"Get": "Execution.PipelineExecutionId"}, "Score"]}}
    score = {
        "Name": "Evaluate",
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/score.py"],
                                  "ContainerArguments": ["--data", "/opt/ml/processing/data", "--out", "/opt/ml/processing/evaluation"]},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}},
            "RoleArn": ROLE,
            "ProcessingInputs": [
                {"InputName": "code", "S3Input": {"S3Uri": code, "LocalPath": "/opt/ml/processing/code", "S3DataType": "S3Prefix", "S3InputMode": "File"}},
                {"InputName": "data", "S3Input": {"S3Uri": {"Get": "Parameters.InputDataUri"}, "LocalPath": "/opt/ml/processing/data", "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            ],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {"S3Uri": out, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
        },
        "PropertyFiles": [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}],
    }
    accuracy = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}, "Path": "binary_classification_metrics.accuracy.value"}}
    gate = {
        "Name": "CheckQuality",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": accuracy, "RightValue": {"Get": "Parameters.QualityThreshold"}}],
            "IfSteps": [{
                "Name": "RegisterModel",
                "Type": "RegisterModel",
                "Arguments": {
                    "ModelPackageGroupName": "stsPackageGroup",
                    "ModelApprovalStatus": "Approved",
                    "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": {"Std:Join": {"On": "/", "Values": [{"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}, "model.tar.gz"]}}}],
                                               "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
                },
            }],
            "ElseSteps": [{"Name": "QualityGateFailed", "Type": "Fail",
                           "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": ["accuracy", accuracy, "is below", {"Get": "Parameters.QualityThreshold"}]}}}}],
        },
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://${Bucket}/sts/input/"},
            {"Name": "QualityThreshold", "Type": "Float", "DefaultValue": 0.5},
        ],
        "Steps": [score, gate],
    }


def deployed_state(tmp_path: Path, clock) -> StateDir:
    out = tmp_path / "cdk.out"
    (out / "asset.code").mkdir(parents=True)
    (out / "asset.code" / "score.py").write_text(SCORE)
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "sts-artifacts"}},
            "Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": "stsPackageGroup"}},
            "Code": {"Type": "Custom::CDKBucketDeployment", "Properties": {
                "SourceBucketNames": [{"Fn::Sub": "cdk-assets-${AWS::AccountId}"}], "SourceObjectKeys": ["code.zip"],
                "DestinationBucketName": {"Ref": "Bucket"}, "DestinationBucketKeyPrefix": "sts/code/"}},
            "Pipeline": {"Type": "AWS::SageMaker::Pipeline", "DependsOn": ["Code", "Group"], "Properties": {
                "PipelineName": "stsPipeline", "RoleArn": ROLE,
                "PipelineDefinition": {"PipelineDefinitionBody": {"Fn::Sub": [json.dumps(definition()), {"Bucket": {"Ref": "Bucket"}}]}}}},
        },
        "Outputs": {"ArtifactBucketName": {"Value": {"Ref": "Bucket"}}, "TrainingPipelineName": {"Value": {"Ref": "Pipeline"}}},
    }
    (out / "sts-training.template.json").write_text(json.dumps(template))
    (out / "sts-training.assets.json").write_text(json.dumps({"files": {"code": {
        "source": {"path": "asset.code", "packaging": "zip"},
        "destinations": {"d": {"bucketName": "cdk-assets-${AWS::AccountId}", "objectKey": "code.zip"}}}}}))
    (out / "manifest.json").write_text(json.dumps({"artifacts": {
        "sts-training.assets": {"type": "cdk:asset-manifest", "properties": {"file": "sts-training.assets.json"}},
        "sts-training": {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/us-east-1",
                         "properties": {"templateFile": "sts-training.template.json"}, "dependencies": ["sts-training.assets"]}}}))
    state = StateDir(tmp_path / "state")
    assert LocalDeployer(state, clock=clock).deploy(Assembly.load(out)).ok
    return state


def invoke(args, cwd: Path):
    """Run the CLI through main() (so errors map to exit codes like the real CLI) in ``cwd``."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_module.main(args)
        return code, out.getvalue(), err.getvalue()
    finally:
        os.chdir(old)


def test_local_train_stages_input_runs_and_writes_the_record(tmp_path, clock):
    state = deployed_state(tmp_path, clock)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.tsv").write_text("x\n" * 6)
    (data / "b.tsv").write_text("y\n" * 2)
    code, out, err = invoke(["train", "--state-dir", str(state.root), "--input-data", str(data)], tmp_path)
    assert code == 0, err
    assert "Evaluate               Succeeded" in out and "accuracy  0.8000" in out
    staged = state.s3_path("s3://sts-artifacts/sts/input/")
    assert sorted(p.name for p in staged.iterdir()) == ["a.tsv", "b.tsv"]
    record = json.loads((tmp_path / "trainmodel_out.json").read_text())
    assert record["status"] == "Succeeded" and record["target"] == "local"
    assert record["metrics"] == {"accuracy": 0.8}
    assert record["parameters"]["InputDataUri"] == "s3://sts-artifacts/sts/input/"
    assert record["model_package_arn"] == "arn:aws:sagemaker:us-east-1:000000000000:model-package/stsPackageGroup/1"
    assert record["model_approval_status"] == "Approved"
    assert record["model_data_url"].endswith(f"/sts/pipelines/{record['execution_id']}/Score/model.tar.gz")
    assert [s["status"] for s in record["steps"]] == ["Succeeded", "Succeeded", "Succeeded"]
    assert json.loads((state.runs / f"train-{record['execution_id']}.json").read_text()) == record


def test_quality_gate_failure_exits_non_zero_with_the_reason(tmp_path, clock):
    state = deployed_state(tmp_path, clock)
    (tmp_path / "one.tsv").write_text("x\n")
    code, out, err = invoke(
        ["train", "--state-dir", str(state.root), "--input-data", f"file://{tmp_path / 'one.tsv'}", "-p", "QualityThreshold=0.9"], tmp_path
    )
    assert code == 1
    assert err.strip() == "Error: the quality gate stopped the pipeline: accuracy 0.1 is below 0.9"
    record = json.loads((tmp_path / "trainmodel_out.json").read_text())
    assert record["status"] == "Failed" and record["failed_step"] == "QualityGateFailed"
    assert record["model_package_arn"] is None and "No model package registered." in out
    assert Registry(state.registry_db).list_model_packages()["ModelPackageSummaryList"] == []


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--input-data", "/no/such/folder"], 2, "--input-data /no/such/folder: no such file or folder"),
        (["-p", "Nope=1"], 2, "unknown pipeline parameter(s): Nope"),
        (["-p", "novalue"], 2, "--parameter expects KEY=VALUE, got 'novalue'"),
        ([], 2, "no training data at s3://sts-artifacts/sts/input/: give --input-data PATH"),
    ],
)
def test_user_mistakes_are_one_clear_line(tmp_path, args, code, message, clock):
    state = deployed_state(tmp_path, clock)
    got, out, err = invoke(["train", "--state-dir", str(state.root), *args], tmp_path)
    assert got == code
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "trainmodel_out.json").exists()


@pytest.mark.parametrize("target", ["local", "aws"])
def test_a_problem_type_override_is_refused_before_anything_runs(tmp_path, target):
    """ProblemType is fixed at synth (the quality gate's path follows from it): the CLI
    says so on either target before it touches the state folder or AWS."""
    state = tmp_path / "state"
    code, out, err = invoke(["train", "--target", target, "--state-dir", str(state), "-p", "ProblemType=Regression"], tmp_path)
    assert code == 2 and "Traceback" not in err
    assert "ProblemType is not a run-time parameter" in err and "-c PROBLEM_TYPE=Regression" in err
    assert not state.exists() and not (tmp_path / "trainmodel_out.json").exists()


def test_not_deployed_says_deploy_first(tmp_path):
    code, _, err = invoke(["train", "--state-dir", str(tmp_path / "empty")], tmp_path)
    assert code == 3 and "pipeline 'stsPipeline' is not deployed locally" in err and "run `stsmon deploy` first" in err


def _client(service):
    return botocore.session.get_session().create_client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def test_aws_target_starts_the_deployed_pipeline_and_follows_it(tmp_path, monkeypatch):
    cfn, sm, s3 = _client("cloudformation"), _client("sagemaker"), _client("s3")
    exec_arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipeline/execution/abc123def456"
    pkg_arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/stspackagegroup/7"
    job_arn = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-abc-evaluate-x"
    with Stubber(cfn) as cs, Stubber(sm) as ss, Stubber(s3) as s3s:
        cs.add_response("describe_stacks", {"Stacks": [{"StackName": "sts-foundation", "CreationTime": "2026-01-01T00:00:00Z", "StackStatus": "CREATE_COMPLETE",
                                                        "Outputs": [{"OutputKey": "ArtifactBucketName", "OutputValue": "sts-bucket"}]}]}, {"StackName": "sts-foundation"})
        cs.add_response("describe_stacks", {"Stacks": [{"StackName": "sts-training", "CreationTime": "2026-01-01T00:00:00Z", "StackStatus": "CREATE_COMPLETE",
                                                        "Outputs": [{"OutputKey": "TrainingPipelineName", "OutputValue": "stsPipeline"}]}]}, {"StackName": "sts-training"})
        ss.add_response("describe_pipeline", {"PipelineDefinition": json.dumps(definition())}, {"PipelineName": "stsPipeline"})
        s3s.add_response("list_objects_v2", {"Contents": [{"Key": "sts/input/old.tsv"}]}, {"Bucket": "sts-bucket", "Prefix": "sts/input/"})
        s3s.add_response("delete_objects", {}, {"Bucket": "sts-bucket", "Delete": {"Objects": [{"Key": "sts/input/old.tsv"}], "Quiet": True}})
        s3s.add_response("put_object", {}, {"Bucket": "sts-bucket", "Key": "sts/input/data.tsv", "Body": ANY})
        ss.add_response("start_pipeline_execution", {"PipelineExecutionArn": exec_arn},
                        {"PipelineName": "stsPipeline", "PipelineParameters": [{"Name": "InputDataUri", "Value": "s3://sts-bucket/sts/input/"}], "ClientRequestToken": ANY})
        ss.add_response("describe_pipeline_execution", {"PipelineExecutionArn": exec_arn, "PipelineExecutionStatus": "Executing"}, {"PipelineExecutionArn": exec_arn})
        ss.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [{"StepName": "Evaluate", "StepStatus": "Executing"}]}, {"PipelineExecutionArn": exec_arn, "SortOrder": "Ascending"})
        done_steps = [
            {"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job_arn}}},
            {"StepName": "RegisterModel", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": pkg_arn}}},
        ]
        ss.add_response("describe_pipeline_execution", {"PipelineExecutionArn": exec_arn, "PipelineExecutionStatus": "Succeeded",
                                                        "CreationTime": "2026-01-01T00:00:00Z", "LastModifiedTime": "2026-01-01T00:05:00Z"}, {"PipelineExecutionArn": exec_arn})
        ss.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": done_steps}, {"PipelineExecutionArn": exec_arn, "SortOrder": "Ascending"})
        ss.add_response("list_pipeline_parameters_for_execution", {"PipelineParameters": [{"Name": "InputDataUri", "Value": "s3://sts-bucket/sts/input/"}]}, {"PipelineExecutionArn": exec_arn})
        ss.add_response("describe_processing_job", {
            "ProcessingJobName": "pipelines-abc-evaluate-x", "ProcessingJobArn": job_arn, "ProcessingJobStatus": "Completed", "CreationTime": "2026-01-01T00:00:00Z",
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
            "AppSpecification": {"ImageUri": IMAGE},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://sts-bucket/sts/pipelines/abc/Evaluate/evaluation", "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
        }, {"ProcessingJobName": "pipelines-abc-evaluate-x"})
        s3s.add_response("get_object", {"Body": io.BytesIO(json.dumps({"binary_classification_metrics": {"accuracy": {"value": 0.79}}}).encode())},
                         {"Bucket": "sts-bucket", "Key": "sts/pipelines/abc/Evaluate/evaluation/evaluation.json"})
        ss.add_response("describe_model_package", {"ModelPackageName": "stsPackageGroup", "ModelPackageGroupName": "stsPackageGroup", "ModelPackageVersion": 7,
                                                   "ModelPackageArn": pkg_arn, "CreationTime": "2026-01-01T00:04:00Z", "ModelPackageStatus": "Completed",
                                                   "ModelApprovalStatus": "Approved", "ModelPackageStatusDetails": {"ValidationStatuses": []},
                                                   "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://sts-bucket/model.tar.gz"}], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}},
                        {"ModelPackageName": pkg_arn})
        clients = {"cloudformation": cfn, "sagemaker": sm, "s3": s3}
        monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **_: clients[service])
        sleeps = []
        monkeypatch.setattr("stsmon.commands.train.cli_sleep", sleeps.append)
        (tmp_path / "data.tsv").write_text("x\n")
        code, out, err = invoke(["train", "--target", "aws", "--state-dir", str(tmp_path / "state"), "--input-data", str(tmp_path / "data.tsv")], tmp_path)
        assert code == 0, err
        for stub in (cs, ss, s3s):
            stub.assert_no_pending_responses()
    record = json.loads((tmp_path / "trainmodel_out.json").read_text())
    assert record["target"] == "aws" and record["status"] == "Succeeded" and record["execution_id"] == "abc123def456"
    assert record["metrics"] == {"accuracy": 0.79} and record["model_package_arn"] == pkg_arn
    assert record["duration_seconds"] == 300.0 and sleeps == [15.0]
    assert "Evaluate               Executing" in out and f"Registered {pkg_arn} (version 7, Approved)" in out
    assert [(s["name"], s["type"]) for s in record["steps"]] == [("Evaluate", "Processing"), ("RegisterModel", "RegisterModel")]


# The command end to end on the real assembly (synth, local deploy, the training pipeline on 600 MSRP pairs) runs on
# the demo's deployment: tests/test_demo.py, the release test's v2 training and
# test_train_end_to_end_impossible_quality_gate_fails_without_registering.
