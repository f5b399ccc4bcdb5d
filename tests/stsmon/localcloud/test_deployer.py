"""Local deploy of hand-written cloud assemblies: check-then-apply, diff, rollback, records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stsmon.errors import StsmonError
from stsmon.localcloud.assembly import Assembly
from stsmon.localcloud.deployer import LocalDeployer, find_output, load_record
from stsmon.localcloud.handlers import HandlerResult, ResourceHandler, register
from stsmon.resource_handlers import handler_for
from stsmon.localcloud.pipelines import load_pipeline
from stsmon.localcloud.registry import Registry
from stsmon.state import StateDir

ASSET_BUCKET = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}
BOOTSTRAP = {
    "Parameters": {
        "BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/hnb659fds/version"}
    },
    "Rules": {
        "CheckBootstrapVersion": {
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}]},
                    "AssertDescription": "CDK bootstrap stack version 6 required.",
                }
            ]
        }
    },
}

FAIL_ON_CREATE: set[str] = set()
REFUSE_IN_CHECK: set[str] = set()


@register("Test::Flaky")
class FlakyHandler(ResourceHandler):
    """Creates a marker file; fails on create/check when told to."""

    def check(self, ctx, logical_id, props):
        if props.get("Name") in REFUSE_IN_CHECK:
            raise StsmonError("no Approved model package in group g: run `stsmon train` first")

    def create(self, ctx, logical_id, props):
        if props.get("Name") in FAIL_ON_CREATE:
            raise StsmonError("boom")
        path = ctx.state.root / "flaky" / props["Name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        return HandlerResult(props["Name"], {"Path": str(path)})

    def delete(self, ctx, logical_id, previous):
        (ctx.state.root / "flaky" / previous.physical_id).unlink(missing_ok=True)


def foundation_template(extra_resources=None, bucket_props=None):
    resources = {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
        "Artifacts": {
            "Type": "AWS::S3::Bucket",
            "Properties": bucket_props
            or {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]}}}
                    ]
                }
            },
            "DeletionPolicy": "Delete",
        },
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {"Statement": []}},
        },
        "Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": "stsPackageGroup"}},
    }
    resources.update(extra_resources or {})
    return {
        "Resources": resources,
        "Outputs": {
            "ArtifactBucketName": {"Value": {"Ref": "Artifacts"}},
            "ExportBucket": {"Value": {"Ref": "Artifacts"}, "Export": {"Name": "sts-foundation:Bucket"}},
            "ExportRole": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}, "Export": {"Name": "sts-foundation:RoleArn"}},
        },
        **BOOTSTRAP,
    }


def training_template(definition=None, extra_resources=None):
    definition = definition or {"Version": "2020-12-01", "Parameters": [], "Steps": []}
    resources = {
        "Deploy": {
            "Type": "Custom::CDKBucketDeployment",
            "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]},
                "SourceBucketNames": [ASSET_BUCKET],
                "SourceObjectKeys": ["abc123.zip"],
                "DestinationBucketName": {"Fn::ImportValue": "sts-foundation:Bucket"},
                "DestinationBucketKeyPrefix": "sts/code/abc123",
                "Prune": True,
            },
        },
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Bucket": ASSET_BUCKET, "S3Key": "abc123.zip"}}},
        "Pipeline": {
            "Type": "AWS::SageMaker::Pipeline",
            "Properties": {
                "PipelineName": "stsPipeline",
                "RoleArn": {"Fn::ImportValue": "sts-foundation:RoleArn"},
                "PipelineDefinition": {
                    "PipelineDefinitionBody": {
                        "Fn::Sub": [json.dumps(definition).replace("BUCKET", "${B}"), {"B": {"Fn::ImportValue": "sts-foundation:Bucket"}}]
                    }
                },
            },
            "DependsOn": ["Deploy"],
        },
    }
    resources.update(extra_resources or {})
    return {
        "Resources": resources,
        "Outputs": {"TrainingPipelineName": {"Value": {"Ref": "Pipeline"}}},
        **BOOTSTRAP,
    }


def write_assembly(root: Path, templates: dict[str, dict], deps: dict[str, list[str]] | None = None) -> Assembly:
    """A cloud assembly like `cdk synth` writes: manifest, templates, one folder asset."""
    deps = deps or {}
    root.mkdir(parents=True, exist_ok=True)
    asset = root / "asset.abc123"
    asset.mkdir(exist_ok=True)
    (asset / "preprocess.py").write_text("print('preprocess')\n")
    (asset / "contract.py").write_text("X = 1\n")
    artifacts = {}
    for name, template in templates.items():
        (root / f"{name}.template.json").write_text(json.dumps(template))
        (root / f"{name}.assets.json").write_text(
            json.dumps(
                {
                    "version": "55.0.0",
                    "files": {
                        "abc123": {
                            "source": {"path": "asset.abc123", "packaging": "zip"},
                            "destinations": {
                                "d": {
                                    "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
                                    "objectKey": "abc123.zip",
                                }
                            },
                        }
                    },
                    "dockerImages": {},
                }
            )
        )
        artifacts[f"{name}.assets"] = {"type": "cdk:asset-manifest", "properties": {"file": f"{name}.assets.json"}}
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": "aws://unknown-account/eu-west-1",
            "properties": {"templateFile": f"{name}.template.json"},
            "dependencies": [f"{name}.assets", *deps.get(name, [])],
        }
    (root / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return Assembly.load(root)


@pytest.fixture
def state(tmp_path):
    return StateDir(tmp_path / "state")


def two_stacks(tmp_path, **kw):
    return write_assembly(
        tmp_path / "cdk.out",
        {"sts-training": training_template(**kw), "sts-foundation": foundation_template()},
        {"sts-training": ["sts-foundation"]},
    )


def test_deploys_in_dependency_order_and_records_everything(tmp_path, state, clock):
    lines: list[str] = []
    report = LocalDeployer(state, echo=lines.append, clock=clock).deploy(two_stacks(tmp_path))
    assert report.ok, report.results
    assert [r.stack_name for r in report.results] == ["sts-foundation", "sts-training"]

    bucket = find_output(state, "ArtifactBucketName")
    assert bucket == bucket.lower() and bucket.startswith("sts-foundation-artifacts-")
    code = state.s3_path(f"s3://{bucket}/sts/code/abc123")
    assert sorted(p.name for p in code.iterdir()) == ["contract.py", "preprocess.py"]
    assert state.s3_path("s3://cdk-hnb659fds-assets-000000000000-eu-west-1/abc123.zip").is_file()

    pipeline = load_pipeline(state, "stsPipeline")
    assert pipeline["PipelineArn"] == "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/stspipeline"
    assert pipeline["RoleArn"].startswith("arn:aws:iam::000000000000:role/sts-foundation-Role-")
    group = Registry(state.registry_db).describe_model_package_group(ModelPackageGroupName="stsPackageGroup")
    assert group["ModelPackageGroupArn"].endswith(":model-package-group/stsPackageGroup")

    record = load_record(state, "sts-foundation")
    key_arn = record.resources["Key"].attributes["Arn"]
    sse = record.resources["Artifacts"].properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_arn
    assert record.exports["sts-foundation:Bucket"] == bucket
    assert load_record(state, "sts-training").imports == ["sts-foundation:Bucket", "sts-foundation:RoleArn"]
    assert json.loads((state.deployments / "templates" / "sts-training.json").read_text())["Outputs"]

    lines.clear()
    again = LocalDeployer(state, echo=lines.append, clock=clock).deploy(two_stacks(tmp_path))
    assert [r.status for r in again.results] == ["unchanged", "unchanged"]
    assert "sts-training: no differences against the local deployment" in lines


def test_redeploy_shows_the_difference_then_applies_only_it(tmp_path, state, clock):
    LocalDeployer(state, clock=clock).deploy(two_stacks(tmp_path))
    before = load_record(state, "sts-training")
    changed = training_template(
        definition={"Version": "2020-12-01", "Parameters": [{"Name": "X", "Type": "String", "DefaultValue": "BUCKET"}], "Steps": []},
        extra_resources={"Extra": {"Type": "Test::Flaky", "Properties": {"Name": "extra"}}},
    )
    del changed["Resources"]["Fn"]
    changed["Resources"]["Deploy"]["Properties"]["ServiceToken"] = "arn:aws:lambda:eu-west-1:000000000000:function:x"
    assembly = write_assembly(
        tmp_path / "cdk2.out",
        {"sts-training": changed, "sts-foundation": foundation_template()},
        {"sts-training": ["sts-foundation"]},
    )
    lines: list[str] = []
    report = LocalDeployer(state, echo=lines.append, clock=clock).deploy(assembly)
    assert report.ok
    text = "\n".join(lines)
    assert "sts-foundation: no differences" in text
    assert "[+] Test::Flaky Extra" in text
    assert "[~] AWS::SageMaker::Pipeline Pipeline (PipelineDefinition)" in text
    assert "[-] AWS::Lambda::Function Fn" in text
    assert "creating Extra" in text and "updating Pipeline" in text and "deleting Fn" in text
    assert "creating Artifacts" not in text
    after = load_record(state, "sts-training")
    assert "Fn" not in after.resources and "Extra" in after.resources
    assert after.resources["Pipeline"].physical_id == before.resources["Pipeline"].physical_id
    bucket = find_output(state, "ArtifactBucketName")
    definition = load_pipeline(state, "stsPipeline")["PipelineDefinition"]
    assert definition["Parameters"][0]["DefaultValue"] == bucket


def test_unknown_resource_type_is_refused_before_any_stack_changes(tmp_path, state, clock):
    assembly = write_assembly(
        tmp_path / "cdk.out",
        {
            "sts-foundation": foundation_template(),
            "sts-training": training_template(extra_resources={"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}),
        },
        {"sts-training": ["sts-foundation"]},
    )
    with pytest.raises(StsmonError, match=r"stack sts-training: resource type\(s\) not supported locally: AWS::SQS::Queue \(Queue\)"):
        LocalDeployer(state, clock=clock).deploy(assembly)
    assert not state.s3_root.exists() and not (state.deployments / "sts-foundation.json").exists()


def test_unknown_intrinsic_names_the_function_and_resource(tmp_path, state, clock):
    template = foundation_template(bucket_props={"BucketName": {"Fn::Length": ["a"]}})
    assembly = write_assembly(tmp_path / "cdk.out", {"sts-foundation": template})
    with pytest.raises(StsmonError, match=r"Resources.Artifacts.Properties.BucketName: unsupported intrinsic function 'Fn::Length'"):
        LocalDeployer(state, clock=clock).deploy(assembly)
    assert load_record(state, "sts-foundation") is None


def test_failure_during_apply_rolls_back_the_stack(tmp_path, state, clock):
    FAIL_ON_CREATE.add("bad")
    try:
        template = foundation_template(
            extra_resources={
                "Good": {"Type": "Test::Flaky", "Properties": {"Name": "good"}},
                "Bad": {"Type": "Test::Flaky", "Properties": {"Name": "bad"}, "DependsOn": ["Good", "Artifacts"]},
            }
        )
        assembly = write_assembly(tmp_path / "cdk.out", {"sts-foundation": template})
        report = LocalDeployer(state, clock=clock).deploy(assembly)
    finally:
        FAIL_ON_CREATE.discard("bad")
    (result,) = report.results
    assert result.status == "failed"
    assert "resource Bad (Test::Flaky): boom — rolled back" in result.message
    assert load_record(state, "sts-foundation") is None
    assert not (state.root / "flaky" / "good").exists()
    assert list(state.s3_root.iterdir()) == [state.s3_root / "cdk-hnb659fds-assets-000000000000-eu-west-1"]
    assert Registry(state.registry_db).list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_a_stack_refused_in_check_keeps_the_others_and_skips_its_dependents(tmp_path, state, clock):
    REFUSE_IN_CHECK.add("serving")
    try:
        assembly = write_assembly(
            tmp_path / "cdk.out",
            {
                "sts-foundation": foundation_template(),
                "sts-serving": {"Resources": {"Lookup": {"Type": "Test::Flaky", "Properties": {"Name": "serving"}}}},
                "sts-monitoring": {"Resources": {"M": {"Type": "Test::Flaky", "Properties": {"Name": "m"}}}},
            },
            {"sts-serving": ["sts-foundation"], "sts-monitoring": ["sts-serving"]},
        )
        report = LocalDeployer(state, clock=clock).deploy(assembly)
    finally:
        REFUSE_IN_CHECK.discard("serving")
    status = {r.stack_name: (r.status, r.message) for r in report.results}
    assert status["sts-foundation"][0] == "deployed"
    assert status["sts-serving"] == (
        "failed",
        "stack sts-serving: resource Lookup (Test::Flaky): no Approved model package in group g: run `stsmon train` first",
    )
    assert status["sts-monitoring"] == ("skipped", "depends on sts-serving, which failed")
    assert not report.ok
    assert load_record(state, "sts-serving") is None and not (state.root / "flaky").exists()


def test_removing_an_export_another_stack_imports_is_refused(tmp_path, state, clock):
    LocalDeployer(state, clock=clock).deploy(two_stacks(tmp_path))
    template = foundation_template()
    del template["Outputs"]["ExportRole"]
    assembly = write_assembly(tmp_path / "cdk2.out", {"sts-foundation": template})
    report = LocalDeployer(state, clock=clock).deploy(assembly, ["sts-foundation"])
    assert "export sts-foundation:RoleArn is imported by stack sts-training" in report.results[0].message


def test_destroy_honours_retain_and_empties_nothing_it_should_keep(tmp_path, state, clock):
    template = foundation_template(extra_resources={"Kept": {"Type": "Test::Flaky", "Properties": {"Name": "kept"}, "DeletionPolicy": "Retain"}})
    LocalDeployer(state, clock=clock).deploy(write_assembly(tmp_path / "cdk.out", {"sts-foundation": template}))
    bucket = find_output(state, "ArtifactBucketName")
    changes = LocalDeployer(state, clock=clock).destroy("sts-foundation")
    assert {c.logical_id: c.action for c in changes}["Kept"] == "retain"
    assert (state.root / "flaky" / "kept").exists()
    assert not state.s3_path(f"s3://{bucket}/").exists()
    assert load_record(state, "sts-foundation") is None


def test_missing_assembly_says_run_synth(tmp_path):
    with pytest.raises(StsmonError, match="run `stsmon synth` first"):
        Assembly.load(tmp_path / "nope")


def test_every_record_only_type_has_a_handler():
    from stsmon.localcloud.handlers.core import RECORD_ONLY

    for rtype in RECORD_ONLY:
        assert handler_for(rtype) is not None


def test_pipeline_cleanup_deletes_the_groups_packages_on_destroy(tmp_path, state, clock):
    template = foundation_template(
        extra_resources={
            "Cleanup": {
                "Type": "Custom::StsPipelineCleanup",
                "Properties": {"PipelineNames": ["stsPipeline"], "ModelPackageGroupName": "stsPackageGroup"},
                "DependsOn": ["Group"],
            }
        }
    )
    LocalDeployer(state, clock=clock).deploy(write_assembly(tmp_path / "cdk.out", {"sts-foundation": template}))
    reg = Registry(state.registry_db, clock=clock)
    spec = {"Containers": [{"Image": "i"}]}
    for _ in range(2):
        reg.create_model_package(ModelPackageGroupName="stsPackageGroup", InferenceSpecification=spec)
    lines: list[str] = []
    LocalDeployer(state, echo=lines.append, clock=clock).destroy("sts-foundation")
    assert "sts-foundation: deleted 2 model package(s) of group stsPackageGroup" in lines
    assert reg.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_pipeline_cleanup_wipes_nothing_when_renamed_or_removed_only_when_the_stack_goes(tmp_path, state, clock):
    """As on AWS (stacks/lambdas/cleanup.py): a renamed pipeline keeps the resource's
    id, and a cleanup resource removed from the template (the switch to prod) leaves
    the registry alone; only destroying the stack wipes."""
    def template(pipeline=None):
        extra = {}
        if pipeline:
            extra["Cleanup"] = {"Type": "Custom::StsPipelineCleanup", "DependsOn": ["Group"],
                                "Properties": {"PipelineNames": [pipeline], "ModelPackageGroupName": "stsPackageGroup"}}
        return foundation_template(extra_resources=extra)

    deployer = LocalDeployer(state, clock=clock)
    deployer.deploy(write_assembly(tmp_path / "v1", {"sts-foundation": template("stsPipeline")}))
    reg = Registry(state.registry_db, clock=clock)
    reg.create_model_package(ModelPackageGroupName="stsPackageGroup", InferenceSpecification={"Containers": [{"Image": "i"}]})
    packages = lambda: reg.list_model_packages(ModelPackageGroupName="stsPackageGroup")["ModelPackageSummaryList"]  # noqa: E731

    deployer.deploy(write_assembly(tmp_path / "v2", {"sts-foundation": template("stsPipeline2")}))
    record = load_record(state, "sts-foundation")
    assert record.resources["Cleanup"].physical_id == "cleanup-stsPipeline"
    assert record.resources["Cleanup"].properties["PipelineNames"] == ["stsPipeline2"]
    assert len(packages()) == 1

    deployer.deploy(write_assembly(tmp_path / "v3", {"sts-foundation": template(None)}))
    assert "Cleanup" not in load_record(state, "sts-foundation").resources
    assert len(packages()) == 1
