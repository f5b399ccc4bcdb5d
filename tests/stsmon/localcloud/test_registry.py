"""The local model registry: SageMaker's semantics, durable, safe with several processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.registry import Registry, RegistryError, ResourceNotFound

GROUP = "stsPackageGroup"
SPEC = {
    "Containers": [
        {
            "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
            "ModelDataUrl": "s3://bucket/sts/model.tar.gz",
        }
    ],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


@pytest.fixture
def reg(tmp_path, clock):
    with Registry(tmp_path / "registry.sqlite", env=LocalEnvironment(region="eu-west-1"), clock=clock) as r:
        r.create_model_package_group(ModelPackageGroupName=GROUP, ModelPackageGroupDescription="sts models")
        yield r


def _create(reg, **extra):
    return reg.create_model_package(ModelPackageGroupName=GROUP, InferenceSpecification=SPEC, **extra)[
        "ModelPackageArn"
    ]


def test_versions_count_from_one_with_arns_in_the_group_names_case(reg):
    """SageMaker keeps the group name's case in package ARNs and IAM authorizes that
    ARN (aws-samples/ml-edge-getting-started issue #18; stacks/constructs/sagemaker_arns.py)."""
    first, second = _create(reg), _create(reg)
    assert first == "arn:aws:sagemaker:eu-west-1:000000000000:model-package/stsPackageGroup/1"
    assert second.endswith("/stsPackageGroup/2")
    described = reg.describe_model_package(ModelPackageName=second)
    assert described["ModelPackageVersion"] == 2
    assert described["ModelPackageGroupName"] == GROUP
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["InferenceSpecification"] == SPEC
    group = reg.describe_model_package_group(ModelPackageGroupName=GROUP)
    assert group["ModelPackageGroupArn"] == "arn:aws:sagemaker:eu-west-1:000000000000:model-package-group/stsPackageGroup"
    # A package is found by its ARN written in any case (names are unique case-insensitively).
    assert reg.describe_model_package(ModelPackageName=first.lower())["ModelPackageArn"] == first


def test_versions_are_not_reused_after_delete(reg):
    _create(reg)
    second = _create(reg)
    reg.delete_model_package(ModelPackageName=second)
    assert _create(reg).endswith("/3")


def test_latest_approved_follows_creation_time_not_approval_order(reg):
    a1 = _create(reg, ModelApprovalStatus="Approved")
    a2 = _create(reg)
    _create(reg, ModelApprovalStatus="Rejected")
    assert reg.latest_approved_package(GROUP)["ModelPackageArn"] == a1
    reg.set_approval(a2, "Approved", "looks good")
    latest = reg.latest_approved_package(GROUP)
    assert latest["ModelPackageArn"] == a2
    assert latest["ApprovalDescription"] == "looks good"
    reg.set_approval(a2, "Rejected")
    assert reg.latest_approved_package(GROUP)["ModelPackageArn"] == a1


def test_no_approved_package_is_none_and_missing_group_is_an_error(reg):
    _create(reg)
    assert reg.latest_approved_package(GROUP) is None
    with pytest.raises(ResourceNotFound, match="nope"):
        reg.latest_approved_package("nope")


def test_list_defaults_to_ascending_and_filters(reg):
    arns = [_create(reg, ModelApprovalStatus=s) for s in ("Approved", "Rejected", "Approved")]
    listed = reg.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == arns
    approved = reg.list_model_packages(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in approved] == [arns[2], arns[0]]
    later = reg.list_model_packages(CreationTimeAfter=reg.clock.now() + timedelta(minutes=1))
    assert later["ModelPackageSummaryList"] == []


def test_metrics_baselines_and_metadata_round_trip(reg):
    metrics = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/eval.json"}}}
    baselines = {
        "ModelQuality": {
            "Constraints": {"ContentType": "application/json", "S3Uri": "s3://b/constraints.json"},
            "Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/statistics.json"},
        }
    }
    arn = _create(
        reg,
        ModelMetrics=metrics,
        DriftCheckBaselines=baselines,
        CustomerMetadataProperties={"execution": "abc"},
    )
    reg.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"note": "x"},
        CustomerMetadataPropertiesToRemove=["execution"],
    )
    pkg = reg.describe_model_package(ModelPackageName=arn)
    assert pkg["ModelMetrics"] == metrics
    assert pkg["CustomerMetadataProperties"] == {"note": "x"}
    assert Registry.metric_uris(pkg) == {
        "ModelMetrics.ModelQuality.Statistics": "s3://b/eval.json",
        "DriftCheckBaselines.ModelQuality.Constraints": "s3://b/constraints.json",
        "DriftCheckBaselines.ModelQuality.Statistics": "s3://b/statistics.json",
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"ModelApprovalStatus": "Maybe"}, "ModelApprovalStatus='Maybe'"),
        ({"NoSuchField": 1}, "Unknown parameter"),
        ({"InferenceSpecification": {"Containers": "x"}}, "Invalid type"),
    ],
)
def test_bad_requests_are_refused_like_boto3(reg, extra, message):
    params = {"ModelPackageGroupName": GROUP, "InferenceSpecification": SPEC, **extra}
    with pytest.raises(RegistryError, match=message):
        reg.create_model_package(**params)
    assert reg.list_model_packages()["ModelPackageSummaryList"] == []


def test_group_rules(reg):
    with pytest.raises(RegistryError, match="already exists"):
        reg.create_model_package_group(ModelPackageGroupName=GROUP.upper())
    with pytest.raises(ResourceNotFound, match="other"):
        reg.create_model_package(ModelPackageGroupName="other", InferenceSpecification=SPEC)
    arn = _create(reg)
    with pytest.raises(RegistryError, match="still has 1"):
        reg.delete_model_package_group(ModelPackageGroupName=GROUP)
    reg.delete_model_package(ModelPackageName=arn)
    reg.delete_model_package_group(ModelPackageGroupName=GROUP)
    assert reg.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_client_token_makes_create_idempotent(reg):
    assert _create(reg, ClientToken="t1") == _create(reg, ClientToken="t1")
    assert len(reg.list_model_packages()["ModelPackageSummaryList"]) == 1


def test_durable_across_reopen(tmp_path, reg):
    arn = _create(reg, ModelApprovalStatus="Approved")
    reg.close()
    with Registry(reg.path, env=reg.env) as again:  # reading needs no clock
        assert again.latest_approved_package(GROUP)["ModelPackageArn"] == arn


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from stsmon.clock import FixedClock
    from stsmon.localcloud.registry import Registry
    reg = Registry(sys.argv[1], clock=FixedClock(datetime(2033, 5, 17, tzinfo=timezone.utc)))
    for _ in range(int(sys.argv[2])):
        reg.create_model_package(ModelPackageGroupName="g",
                                 InferenceSpecification={"Containers": [{"Image": "i"}]})
    """
)


def test_several_processes_get_distinct_versions(tmp_path, subprocess_env, clock):
    path = tmp_path / "registry.sqlite"
    Registry(path, clock=clock).create_model_package_group(ModelPackageGroupName="g")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), "15"], env=subprocess_env) for _ in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    versions = [p["ModelPackageVersion"] for p in Registry(path).list_model_packages()["ModelPackageSummaryList"]]
    assert sorted(versions) == list(range(1, 46))


KILLED_MID_WRITE = textwrap.dedent(
    """
    import os, sys
    from stsmon.localcloud.registry import Registry
    reg = Registry(sys.argv[1])
    conn = reg._connection()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO group_version_counter VALUES ('g', 99) "
                 "ON CONFLICT(group_name) DO UPDATE SET last_version = 99")
    conn.execute("INSERT INTO model_package (group_name, version, arn, approval_status, creation_time, "
                 "last_modified_time, request) VALUES ('g', 99, 'x', 'Approved', 't', 't', '{}')")
    os._exit(9)  # killed before COMMIT
    """
)


def test_a_process_killed_mid_write_leaves_the_registry_consistent(tmp_path, subprocess_env, clock):
    path = tmp_path / "registry.sqlite"
    reg = Registry(path, clock=clock)
    reg.create_model_package_group(ModelPackageGroupName="g")
    reg.create_model_package(ModelPackageGroupName="g", InferenceSpecification={"Containers": [{"Image": "i"}]})
    reg.close()
    result = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(path)], env=subprocess_env)
    assert result.returncode == 9
    reg = Registry(path, clock=clock)
    assert [p["ModelPackageVersion"] for p in reg.list_model_packages()["ModelPackageSummaryList"]] == [1]
    arn = reg.create_model_package(ModelPackageGroupName="g", InferenceSpecification={"Containers": [{"Image": "i"}]})
    assert arn["ModelPackageArn"].endswith("/g/2")
