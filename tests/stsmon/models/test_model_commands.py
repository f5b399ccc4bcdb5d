"""`stsmon model list | describe | approve | reject | rollback` on the local target: every SageMaker
call goes through the validating clients (botocore's model), so the same calls are well-formed on AWS
(the AWS path is tested with botocore's Stubber in test_model_aws.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
from dataclasses import dataclass
from registry_fixture import ENDPOINT, GROUP, register, serve

from stscontracts.config import Config
from stsmon import cli as cli_module
from stsmon.localcloud.registry import Registry
from stsmon.models import release, versions
from stsmon.state import StateDir


def run(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_module.main(args)
        return code, out.getvalue(), err.getvalue()
    finally:
        os.chdir(old)


@dataclass
class Setup:
    dir: StateDir
    arns: list[str]


@pytest.fixture
def state(tmp_path, clock):
    """v1 Approved (served), v2 Rejected, v3 PendingManualApproval, v4 Pending and below the gate (0.7)."""
    folder = StateDir(tmp_path / "state")
    arns = register(folder, clock, [("Approved", 0.78), ("Rejected", 0.74), ("PendingManualApproval", 0.80),
                                    ("PendingManualApproval", 0.61)])
    serve(folder, arns[0])
    return Setup(folder, arns)


def model(state, *args):
    return run(["model", *args, "--state-dir", str(state.dir.root)], state.dir.root.parent)


def package(state, n):
    return Registry(state.dir.registry_db).describe_model_package(ModelPackageName=state.arns[n - 1])


def test_list_shows_each_version_with_status_metrics_gate_and_what_is_served(state):
    code, out, err = model(state, "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Model package group {GROUP} (* = served by the endpoint):"
    assert [line.split()[0:2] for line in lines[1:]] == [["v4", "PendingManualApproval"], ["v3", "PendingManualApproval"],
                                                        ["v2", "Rejected"], ["*", "v1"]]
    assert "accuracy 0.610" in lines[1] and "[GATE FAILS]" in lines[1]
    assert "accuracy 0.780" in lines[4] and "Approved" in lines[4] and "[gate ok]" in lines[4]
    code, out, _ = model(state, "list", "--json")
    listed = json.loads(out)
    assert [(x["version"], x["served"], x["gate"]["passes"]) for x in listed] == \
        [(4, False, False), (3, False, True), (2, False, True), (1, True, True)]
    assert listed[0]["metrics"]["accuracy"] == 0.61 and listed[0]["arn"] == state.arns[3]


def test_list_with_no_endpoint_marks_nothing_served(tmp_path, clock):
    state = Setup(StateDir(tmp_path / "state"), [])
    register(state.dir, clock, [("Approved", 0.78)])
    code, out, err = model(state, "list", "--json")
    assert code == 0, err
    assert [x["served"] for x in json.loads(out)] == [False]


def test_describe_shows_the_package(state):
    code, out, err = model(state, "describe", "v1")
    assert code == 0, err
    assert out.splitlines()[0] == f"v1  {state.arns[0]}  (served by the endpoint)"
    assert "quality gate  accuracy 0.7800 passes the gate (accuracy >= 0.7)" in out
    assert "s3://bkt/sts/run1/model.tar.gz" in out


def test_approve_stores_the_description_as_sagemaker_does_and_says_how_to_serve_it(state):
    """...and prints the State Change event the approval put on the local bus, with the rule target it reached
    (the foundation stack's rule on the group's packages, pending or approved -> the alarm topic)."""
    from stsmon.localcloud.events import write_rule

    write_rule(state.dir, {"Name": "sts-registry-events", "Arn": "arn:aws:events:us-east-1:000000000000:rule/sts-registry-events",
                           "State": "ENABLED", "EventPattern": {"source": ["aws.sagemaker"],
                                                                "detail-type": ["SageMaker Model Package State Change"],
                                                                "detail": {"ModelPackageGroupName": [GROUP]}},
                           "Targets": [{"Id": "Alarms", "Arn": "arn:aws:sns:us-east-1:000000000000:sts-alarms"}]})
    code, out, err = model(state, "approve", "3", "-d", "reviewed: +2 points on the test split")
    assert code == 0, err
    assert out.splitlines()[0] == 'v3: PendingManualApproval -> Approved ("reviewed: +2 points on the test split")'
    assert out.splitlines()[1] == ("event: SageMaker Model Package State Change: stsPackageGroup/3 Approved -> "
                                   "sts-alarms (rule sts-registry-events)")
    assert "stsmon deploy" in out
    described = package(state, 3)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "reviewed: +2 points on the test split"


def test_approving_a_version_that_fails_the_gate_needs_force(state):
    code, out, err = model(state, "approve", "v4")
    assert code == 2
    assert err.strip() == ("Error: not approving v4: accuracy 0.6100 fails the gate (accuracy >= 0.7). "
                           "Approve it anyway with --force (and say why in --description).")
    assert package(state, 4)["ModelApprovalStatus"] == "PendingManualApproval"
    code, out, err = model(state, "approve", "v4", "--force", "-d", "accepted: the new data is harder")
    assert code == 0, err
    assert "Its evaluation: accuracy 0.6100 fails the gate (accuracy >= 0.7) (approved with --force)." in out
    assert package(state, 4)["ModelApprovalStatus"] == "Approved"


def test_the_gate_is_the_configured_one(state):
    """QUALITY_THRESHOLD=0.79 (like `cdk -c`): v1 at 0.78 no longer passes."""
    code, _, err = model(state, "approve", "1", "-c", "QUALITY_THRESHOLD=0.79")
    assert code == 2 and "accuracy 0.7800 fails the gate (accuracy >= 0.79)" in err


def test_reject_the_served_version_says_it_still_serves(state):
    code, out, err = model(state, "reject", "1", "--description", "bad on new traffic")
    assert code == 0, err
    assert "event: SageMaker Model Package State Change: stsPackageGroup/1 Rejected (no rule matched)" in out
    assert 'v1: Approved -> Rejected ("bad on new traffic")' in out and "still what the endpoint serves" in out
    assert package(state, 1)["ApprovalDescription"] == "bad on new traffic"


def test_an_unknown_version_is_one_clear_line(state):
    code, out, err = model(state, "approve", "9")
    assert code == 2
    assert err.strip() == "Error: no version '9' in the model package group (versions: v1, v2, v3, v4; see `stsmon model list`)"


def test_rollback_without_an_earlier_approved_version_refuses_and_changes_nothing(state, tmp_path):
    code, out, err = model(state, "rollback", "--assembly", str(tmp_path / "no-assembly"))
    assert code == 2
    assert err.strip() == ("Error: no Approved version older than v1 (the one the endpoint serves) in the group: "
                           "nothing to roll back to. `stsmon model list` shows the versions; approve one first, or "
                           "serve another with `stsmon model rollback --to N`.")
    assert "Traceback" not in err


def test_rollback_without_a_served_package_refuses(tmp_path, clock):
    folder = StateDir(tmp_path / "state")
    state = Setup(folder, register(folder, clock, [("Approved", 0.78)]))
    code, _, err = model(state, "rollback")
    assert code == 3 and "the endpoint serves no model package of this group" in err


def test_the_rollback_target_is_the_newest_earlier_approved_version(state, local_clients):
    """v3 served; v2 Rejected, v1 Approved -> v1. --to must name an Approved version other than the served one."""
    clients = local_clients(state.dir, config=Config(endpoint_name=ENDPOINT))
    clients.sagemaker.update_model_package(ModelPackageArn=state.arns[2], ModelApprovalStatus="Approved")
    serve(state.dir, state.arns[2])
    found = versions.list_versions(clients)
    served, target = release.rollback_target(found)
    assert (served.number, target.number) == (3, 1)
    with pytest.raises(release.UsageError, match="v2 is Rejected, not Approved"):
        release.rollback_target(found, "2")
    with pytest.raises(release.UsageError, match="v3 is what the endpoint serves already"):
        release.rollback_target(found, "v3")
    assert release.rollback_target(found, "1")[1].number == 1


def test_the_served_package_is_read_through_the_validated_clients(state, local_clients):
    """describe_endpoint -> describe_endpoint_config -> describe_model, each answer checked against botocore's
    model (the monitoring stack's custom resource reads it the same way: stscontracts.served_package)."""
    clients = local_clients(state.dir, config=Config(endpoint_name=ENDPOINT))
    assert versions.served_arn(clients) == state.arns[0]
    calls = [c["method"] for c in clients.call_log.calls if c["method"].startswith("describe_")]
    assert calls == ["describe_endpoint", "describe_endpoint_config", "describe_model"]
    assert all(c["response_valid"] for c in clients.call_log.calls if "error" not in c)
    model = clients.sagemaker.describe_model(ModelName="sts-serving-Model-0123456789")
    assert model["Containers"] == [{"ModelPackageName": state.arns[0]}] and model["CreationTime"].tzinfo is not None


def test_list_shows_the_newest_versions_up_to_max(state):
    code, out, err = model(state, "list", "--max", "2", "--json")
    assert code == 0, err
    assert [x["version"] for x in json.loads(out)] == [4, 3]


def test_the_gate_follows_the_metrics_direction():
    """Regression metrics where lower is better (mae, rmse) pass at or below the threshold."""
    assert versions.Gate("mae", 0.5, False, 0.4).passes and not versions.Gate("mae", 0.5, False, 0.6).passes
    assert versions.Gate("r2", 0.3, True, 0.3).passes and not versions.Gate("r2", 0.3, True, None).passes
    assert versions.Gate("mae", 0.5, False, 0.6).describe() == "mae 0.6000 fails the gate (mae <= 0.5)"
