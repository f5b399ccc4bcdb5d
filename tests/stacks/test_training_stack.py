"""Training stack intents: the code asset, the pipeline resource, cleanup per profile."""

from __future__ import annotations

import json
import tarfile

from cdk_helpers import logical_id, pipeline_definition, policy_statements, render
from pipeline_code import placeholders
from stacks.constructs.step_code import content_hash, script_files


def test_code_is_deployed_under_a_content_hashed_prefix_with_kms(dev, repo_root):
    deployment = dev.one("training", "Custom::CDKBucketDeployment")["Properties"]
    # The staged asset in cdk.out holds the scripts (literal names), the contracts
    # package they import (stscontracts/) and sourcedir.tar.gz with the same files;
    # the prefix is their content hash.
    (key,) = deployment["SourceObjectKeys"]
    asset = dev.outdir / f"asset.{key.removesuffix('.zip')}"
    shipped = sorted((p.relative_to(asset).as_posix(), p) for p in asset.rglob("*")
                     if p.is_file() and p.name != "sourcedir.tar.gz")
    sources = script_files(repo_root / "processing_scripts")
    assert [name for name, _ in shipped] == [name for name, _ in sources]
    assert all(a.read_bytes() == b.read_bytes() for (_, a), (_, b) in zip(shipped, sources))
    assert {name for name, _ in shipped} >= {"preprocess.py", "monitor.py", "stscontracts/__init__.py", "stscontracts/names.py"}
    assert "__init__.py" not in {p.name for p in asset.iterdir()}
    expected_hash = content_hash(shipped)
    with tarfile.open(asset / "sourcedir.tar.gz") as tar:
        assert sorted(tar.getnames()) == [name for name, _ in shipped]
        for name, path in shipped:
            assert tar.extractfile(name).read() == path.read_bytes()
    assert deployment["DestinationBucketKeyPrefix"] == f"sts/code/{expected_hash}/"
    assert deployment["DestinationBucketName"] == "sts-artifacts-000000000000-us-east-1"
    assert deployment["SystemMetadata"]["sse"] == "aws:kms"
    assert deployment["Prune"] is False and deployment["RetainOnDelete"] is True
    assert dev.stacks.training.code.key_prefix == f"sts/code/{expected_hash}/"


def test_pipeline_resource_and_its_definition_point_at_that_code(dev):
    resource = dev.one("training", "AWS::SageMaker::Pipeline")
    props = resource["Properties"]
    assert props["PipelineName"] == "stsPipeline"
    assert "Fn::ImportValue" in props["RoleArn"]  # the foundation's execution role
    definition = pipeline_definition(resource)
    prefix = dev.stacks.training.code.key_prefix
    text = json.dumps(definition)
    assert f"s3://sts-artifacts-000000000000-us-east-1/{prefix}" in text
    assert placeholders.find_leftovers(text) == []
    # Role and key are deploy-time references to the foundation stack.
    preprocess = definition["Steps"][0]["Arguments"]
    assert preprocess["RoleArn"].startswith("<Import sts-foundation:")
    assert preprocess["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"].startswith("<Import sts-foundation:")


def test_pipeline_waits_for_its_code(dev):
    template = dev.template("training")
    pipeline_id = logical_id(template, "AWS::SageMaker::Pipeline", "Pipeline/Resource")
    deployment_id = logical_id(template, "Custom::CDKBucketDeployment", "StepCode/Deployment")
    assert deployment_id in template["Resources"][pipeline_id]["DependsOn"]


def test_dev_cleans_up_pipeline_leftovers_prod_does_not(dev, prod):
    cleanup = dev.one("training", "Custom::StsPipelineCleanup")
    assert cleanup["Properties"]["PipelineNames"] == ["stsPipeline"]
    assert cleanup["Properties"]["ModelPackageGroupName"] == "stsPackageGroup"
    template = dev.template("training")
    pipeline_id = logical_id(template, "AWS::SageMaker::Pipeline", "Pipeline/Resource")
    assert pipeline_id in cleanup["DependsOn"]  # deleted before the pipeline
    assert prod.resources("training", "Custom::StsPipelineCleanup") == {}


def test_custom_resource_handlers_have_encrypted_logs_with_retention(dev):
    groups = dev.resources("training", "AWS::Logs::LogGroup")
    assert groups and all(g["Properties"]["RetentionInDays"] == 30 and "KmsKeyId" in g["Properties"] for g in groups.values())
    functions = dev.resources("training", "AWS::Lambda::Function")
    ours = [f for f in functions.values() if f["Properties"].get("Handler") == "cleanup.handler"]
    assert len(ours) == 1 and ours[0]["Properties"]["Runtime"] == "python3.14"


def test_outputs(dev):
    outputs = dev.template("training")["Outputs"]
    assert outputs["TrainingPipelineName"]["Value"] == "stsPipeline"
    assert outputs["TrainingInputUri"]["Value"] == "s3://sts-artifacts-000000000000-us-east-1/sts/input/"
    assert outputs["StepCodeUri"]["Value"].startswith("s3://sts-artifacts-000000000000-us-east-1/sts/code/")


def test_custom_resources_answer_once_and_cloudformation_stops_waiting_soon_after_the_lambda(dev):
    """ServiceTimeout = the function's timeout + 60 s (not CloudFormation's default
    hour), and no asynchronous retries (a retry would answer a second time)."""
    seen = 0
    for kind in ("training", "serving", "monitoring"):
        template = dev.template(kind)
        resources = template["Resources"]
        retries = {render(r["Properties"]["FunctionName"]): r["Properties"]["MaximumRetryAttempts"]
                   for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"}
        for lid, res in resources.items():
            if res["Type"] not in ("Custom::StsApprovedModelPackage", "Custom::StsPipelineCleanup"):
                continue
            function_id = res["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
            timeout = resources[function_id]["Properties"]["Timeout"]
            assert int(res["Properties"]["ServiceTimeout"]) == timeout + 60, lid
            assert retries[render({"Ref": function_id})] == 0, lid
            seen += 1
    assert seen == 4  # serving and monitoring lookups, training and monitoring cleanups


def test_cleanup_may_read_only_its_own_stack_status(dev):
    template = dev.template("training")
    role = logical_id(template, "AWS::IAM::Role", "Cleanup/Handler/Role")
    statements = [s for s in policy_statements(template, role) if "cloudformation:DescribeStacks" in str(s["Action"])]
    assert [(s["Action"], s["Resource"]) for s in statements] == [("cloudformation:DescribeStacks", {"Ref": "AWS::StackId"})]
