"""``stsmon status`` and ``stsmon cleanup``: one implementation each, against the local runtime (real
records, a real background endpoint) and against AWS (botocore Stubber)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from click.testing import CliRunner

from stsmon import cli as cli_module
from stsmon.cleanup import stop_executions_and_delete_packages
from stsmon.clock import FixedClock
from stsmon.endpoint.process import read_record
from stsmon.fileio import write_json_atomic
from stsmon.localcloud.deployer import record_path
from stsmon.localcloud.plan import StackRecord
from stsmon.localcloud.registry import Registry, RegistryError
from stsmon.overview import format_status, status
from stsmon.state import StateDir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "endpoint"))
from endpoint_fixtures import server_env, start_server, toy_model_dir  # noqa: E402,F401  (fixtures)

BUCKET = "sts-artifacts"
OUTPUTS = {
    "ArtifactBucketName": BUCKET,
    "ModelPackageGroupName": "stsPackageGroup",
    "TrainingPipelineName": "stsPipeline",
}


def deploy_record(state: StateDir, stack: str, outputs: dict) -> None:
    record = StackRecord(stack_name=stack, artifact_id=stack, region="us-east-1", account="000000000000",
                         deployed_at="2026-11-27T12:00:00Z", assembly="cdk.out", parameters={}, resources={},
                         order=[], outputs=outputs, exports={}, imports=[])
    path = record_path(state, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record.to_json())


def register_package(state: StateDir, accuracy: float) -> str:
    evaluation = f"s3://{BUCKET}/sts/pipelines/x/Evaluate/evaluation.json"
    path = state.s3_path(evaluation)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"binary_classification_metrics": {
        "accuracy": {"value": accuracy, "standard_deviation": 0.01},
        "f1": {"value": 0.8, "standard_deviation": 0.01}}}))
    registry = Registry(state.registry_db, clock=FixedClock(datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc)))
    with contextlib.suppress(RegistryError):  # the group exists from an earlier call
        registry.create_model_package_group(ModelPackageGroupName="stsPackageGroup")
    created = registry.create_model_package(
        ModelPackageGroupName="stsPackageGroup",
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                            "ModelDataUrl": f"s3://{BUCKET}/sts/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation}}},
    )
    return created["ModelPackageArn"]


def run(args: list[str]) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli_module.cli, args, standalone_mode=False, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        from stsmon.errors import StsmonError

        assert isinstance(result.exception, StsmonError), result.exception
        return result.exception.exit_code, result.output, result.exception.message
    return result.exit_code or 0, result.output, ""


# -- status, local -----------------------------------------------------------

def test_status_with_nothing_deployed_says_so_and_exits_3(tmp_path):
    code, out, err = run(["status", "--state-dir", str(tmp_path / "none")])
    assert code == 3
    assert "(none deployed)" in out and "sts-foundation         NOT_DEPLOYED" in out
    assert "nothing is deployed locally" in err and "run `stsmon deploy` first" in err


def test_status_shows_stacks_packages_and_metrics(tmp_path):
    state = StateDir(tmp_path / "state")
    deploy_record(state, "sts-foundation", {k: OUTPUTS[k] for k in ("ArtifactBucketName", "ModelPackageGroupName")})
    deploy_record(state, "sts-training", {"TrainingPipelineName": "stsPipeline"})
    register_package(state, 0.7812)
    register_package(state, 0.7934)

    code, out, _ = run(["status", "--state-dir", str(state.root)])
    assert code == 0
    assert "sts-foundation" in out and "sts-training" in out
    assert "stsPipeline            no executions" in out
    lines = [line for line in out.splitlines() if "Approved" in line]
    assert len(lines) == 2 and "v2" in lines[0] and "accuracy 0.793" in lines[0]  # newest first

    code, out, _ = run(["status", "--state-dir", str(state.root), "--json"])
    data = json.loads(out)
    assert [p["version"] for p in data["packages"]] == [2, 1]
    assert data["packages"][0]["metrics"]["accuracy"] == pytest.approx(0.7934)
    assert data["endpoints"] == [] and data["last_monitoring"] is None


def test_status_reports_the_endpoint_with_capture_counts(tmp_path, start_server, toy_model_dir, clock, local_clients):
    state = StateDir(tmp_path / "state")
    deploy_record(state, "sts-serving", {"EndpointName": "sts-endpoint"})
    server = start_server(toy_model_dir, name="sts-endpoint", state=state, flush_interval=0.1)
    assert status(local_clients(state), clock.now())["endpoints"][0]["running"] is True
    for i in range(3):
        code, _, _ = server.request("POST", "/invocations", b"a,b\n",
                                    {"Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": f"t{i}"})
        assert code == 200
    server.stop()  # drains: every record written and counted
    data = status(local_clients(state), clock.now())
    [endpoint] = data["endpoints"]
    assert endpoint["name"] == "sts-endpoint" and endpoint["running"] is False and endpoint["status"] == "OutOfService"
    assert endpoint["capture"]["written"] == 3


# -- cleanup, local ----------------------------------------------------------

def test_cleanup_stops_the_endpoint_and_removes_the_state(tmp_path, start_server, toy_model_dir):
    state = StateDir(tmp_path / "state")
    server = start_server(toy_model_dir, name="sts-endpoint", state=state)
    deploy_record(state, "sts-foundation", {"ArtifactBucketName": BUCKET})
    assert server.ping() == 200

    code, out, _ = run(["cleanup", "--state-dir", str(state.root), "--yes"])
    assert code == 0, out
    assert "stopped endpoint sts-endpoint" in out
    assert not state.root.exists()
    with pytest.raises(OSError):
        server.ping()


def test_cleanup_keep_state_only_stops(tmp_path, start_server, toy_model_dir):
    state = StateDir(tmp_path / "state")
    start_server(toy_model_dir, name="sts-endpoint", state=state)
    code, out, _ = run(["cleanup", "--state-dir", str(state.root), "--keep-state"])
    assert code == 0
    assert state.root.is_dir()
    assert read_record(state, "sts-endpoint")["running"] is False


def test_cleanup_asks_first_and_a_no_changes_nothing(tmp_path):
    state = StateDir(tmp_path / "state")
    deploy_record(state, "sts-foundation", {"ArtifactBucketName": BUCKET})
    result = CliRunner().invoke(cli_module.cli, ["cleanup", "--state-dir", str(state.root)], input="n\n")
    assert result.exit_code == 1  # click's Abort
    assert "Aborted" in result.output
    assert record_path(state, "sts-foundation").is_file()


def test_cleanup_refuses_a_folder_that_is_not_a_state_folder(tmp_path):
    folder = tmp_path / "home"
    (folder / "deployments").mkdir(parents=True)
    (folder / "thesis.tex").write_text("precious")
    code, _, err = run(["cleanup", "--state-dir", str(folder), "--yes"])
    assert code == 2
    assert "does not look like a stsmon state folder" in err and "thesis.tex" in err
    assert (folder / "thesis.tex").read_text() == "precious"


def test_cleanup_of_a_missing_state_folder_is_a_no_op(tmp_path):
    code, out, _ = run(["cleanup", "--state-dir", str(tmp_path / "none"), "--yes"])
    assert code == 0 and "Nothing to clean up" in out


# -- AWS (Stubber) -----------------------------------------------------------

@pytest.fixture
def stubbed(aws_clients, boto_client):
    cfn, sm, sched, s3 = (boto_client(s) for s in ("cloudformation", "sagemaker", "scheduler", "s3"))
    with Stubber(cfn) as c, Stubber(sm) as s, Stubber(sched) as e, Stubber(s3) as o:
        yield aws_clients({"cloudformation": cfn, "sagemaker": sm, "scheduler": sched, "s3": s3}), c, s, e, o
        for stub in (c, s, e, o):
            stub.assert_no_pending_responses()


def _stack(name, outputs):
    return {"Stacks": [{"StackName": name, "StackStatus": "CREATE_COMPLETE", "CreationTime": datetime(2026, 11, 27, tzinfo=timezone.utc),
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


def test_aws_status_reads_stacks_pipelines_packages_and_schedule(stubbed, clock):
    clients, c, s, e, o = stubbed
    when = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/stsPackageGroup/3"
    c.add_response("describe_stacks", _stack("sts-foundation", {"ModelPackageGroupName": "stsPackageGroup"}), {"StackName": "sts-foundation"})
    c.add_response("describe_stacks", _stack("sts-training", {"TrainingPipelineName": "stsPipeline"}), {"StackName": "sts-training"})
    c.add_client_error("describe_stacks", "ValidationError", "Stack with id sts-serving does not exist", expected_params={"StackName": "sts-serving"})
    c.add_response("describe_stacks", _stack("sts-monitoring", {"MonitoringScheduleName": "sts-model-quality"}), {"StackName": "sts-monitoring"})
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipeline/execution/abc123"
    s.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [{"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Failed", "StartTime": when}]},
                   {"PipelineName": "stsPipeline", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1})
    s.add_response("describe_pipeline_execution", {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Failed",
                                                   "FailureReason": "Step QualityGateFailed failed", "CreationTime": when},
                   {"PipelineExecutionArn": arn})
    s.add_response("list_model_packages", {"ModelPackageSummaryList": [{
        "ModelPackageArn": package, "ModelPackageGroupName": "stsPackageGroup", "ModelPackageVersion": 3, "CreationTime": when,
        "ModelPackageStatus": "Completed", "ModelApprovalStatus": "PendingManualApproval"}]},
        {"ModelPackageGroupName": "stsPackageGroup", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 10})
    evaluation = "s3://sts-bucket/sts/pipelines/abc123/Evaluate/evaluation/evaluation.json"
    s.add_response("describe_model_package", {
        "ModelPackageName": "stsPackageGroup", "ModelPackageGroupName": "stsPackageGroup", "ModelPackageVersion": 3,
        "ModelPackageArn": package, "CreationTime": when, "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []}, "ModelApprovalStatus": "PendingManualApproval",
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation}}}},
        {"ModelPackageName": package})
    raw = json.dumps({"binary_classification_metrics": {"accuracy": {"value": 0.79, "standard_deviation": 0.01}}}).encode()
    o.add_response("get_object", {"Body": StreamingBody(io.BytesIO(raw), len(raw))},
                   {"Bucket": "sts-bucket", "Key": "sts/pipelines/abc123/Evaluate/evaluation/evaluation.json"})
    e.add_response("get_schedule", {"Name": "sts-model-quality", "ScheduleExpression": "cron(0 * ? * * *)", "State": "ENABLED"},
                   {"Name": "sts-model-quality"})
    data = status(clients, clock.now())
    assert [st["status"] for st in data["stacks"]] == ["CREATE_COMPLETE", "CREATE_COMPLETE", "NOT_DEPLOYED", "CREATE_COMPLETE"]
    assert data["pipelines"][0]["latest"]["status"] == "Failed"
    assert data["pipelines"][0]["latest"]["execution_id"] == "abc123"
    assert data["packages"] == [{"arn": package, "version": 3, "approval": "PendingManualApproval",
                                 "created": when.isoformat(), "metrics": {"accuracy": 0.79}}]
    assert data["schedules"] == {"scheduler_running": None, "schedules": [{
        "name": "sts-model-quality", "expression": "cron(0 * ? * * *)", "state": "ENABLED", "pipeline": None,
        "next": None, "last": None, "last_execution": None, "last_status": None}]}
    assert "Target: aws (on AWS (us-east-1))" in format_status(data)


def test_aws_status_with_no_stack_reports_and_exits_3(monkeypatch, boto_client):
    cfn = boto_client("cloudformation")
    with Stubber(cfn) as c:
        for kind in ("foundation", "training", "serving", "monitoring"):
            c.add_client_error("describe_stacks", "ValidationError", f"Stack with id sts-{kind} does not exist")
        sm = boto_client("sagemaker")
        with Stubber(sm) as s:
            s.add_response("list_model_packages", {"ModelPackageSummaryList": []})
            monkeypatch.setattr("stsmon.aws.client", lambda service, region=None, **_: {"cloudformation": cfn, "sagemaker": sm}[service])
            code, out, err = run(["status", "--target", "aws"])
    assert code == 3 and "(none deployed)" in out
    assert "nothing is deployed on AWS (us-east-1): run `npx cdk deploy --all`" in err


def test_cleanup_stops_running_executions_and_deletes_packages(stubbed):
    clients, c, s, _, _ = stubbed
    when = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
    running = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipeline/execution/run1"
    done = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stspipeline/execution/done1"
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/stspackagegroup/1"
    lines: list[str] = []
    c.add_response("describe_stacks", _stack("sts-foundation", {"ModelPackageGroupName": "stsPackageGroup"}))
    c.add_response("describe_stacks", _stack("sts-training", {"TrainingPipelineName": "stsPipeline"}))
    c.add_client_error("describe_stacks", "ValidationError", "Stack with id sts-monitoring does not exist")
    s.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
        {"PipelineExecutionArn": running, "PipelineExecutionStatus": "Executing", "StartTime": when},
        {"PipelineExecutionArn": done, "PipelineExecutionStatus": "Succeeded", "StartTime": when}]},
        {"PipelineName": "stsPipeline"})
    s.add_response("stop_pipeline_execution", {"PipelineExecutionArn": running},
                   {"PipelineExecutionArn": running})
    s.add_response("list_model_packages", {"ModelPackageSummaryList": [{
        "ModelPackageArn": package, "ModelPackageGroupName": "stsPackageGroup", "ModelPackageVersion": 1,
        "CreationTime": when, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"}]},
        {"ModelPackageGroupName": "stsPackageGroup"})
    s.add_response("delete_model_package", {}, {"ModelPackageName": package})
    result = stop_executions_and_delete_packages(clients, lines.append, delete_packages=True)
    assert result == {"executions": [running], "packages": [package]}
    assert any("deleted" in line for line in lines)


def test_cleanup_lists_every_page_before_deleting_so_no_package_is_skipped(stubbed):
    """Three pages of packages. Deleting while paging shifts the later pages (what
    was on page 2 moves onto page 1, already read), so every page is listed first;
    the Stubber's queue fails the test if a deletion comes before the last page.
    A package deleted meanwhile is not an error."""
    clients, c, s, _, _ = stubbed
    when = datetime(2033, 3, 1, 12, tzinfo=timezone.utc)
    arns = [f"arn:aws:sagemaker:us-east-1:123456789012:model-package/stspackagegroup/{n}" for n in range(1, 251)]
    pages = [arns[i:i + 100] for i in range(0, len(arns), 100)]
    lines: list[str] = []
    c.add_response("describe_stacks", _stack("sts-foundation", {"ModelPackageGroupName": "stsPackageGroup"}))
    c.add_response("describe_stacks", _stack("sts-training", {"TrainingPipelineName": "stsPipeline"}))
    c.add_client_error("describe_stacks", "ValidationError", "Stack with id sts-monitoring does not exist")
    s.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": []}, {"PipelineName": "stsPipeline"})
    for i, page in enumerate(pages):
        response = {"ModelPackageSummaryList": [{
            "ModelPackageArn": arn, "ModelPackageGroupName": "stsPackageGroup", "ModelPackageVersion": int(arn.rsplit("/", 1)[1]),
            "CreationTime": when, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"} for arn in page]}
        if i + 1 < len(pages):
            response["NextToken"] = f"page{i + 1}"
        s.add_response("list_model_packages", response,
                       {"ModelPackageGroupName": "stsPackageGroup", **({"NextToken": f"page{i}"} if i else {})})
    for arn in arns:
        if arn.endswith("/7"):
            s.add_client_error("delete_model_package", "ValidationException", f"Model Package {arn} does not exist.",
                               expected_params={"ModelPackageName": arn})
        else:
            s.add_response("delete_model_package", {}, {"ModelPackageName": arn})
    result = stop_executions_and_delete_packages(clients, lines.append, delete_packages=True)
    assert result["packages"] == [arn for arn in arns if not arn.endswith("/7")]
