"""Serving stack intents: package lookup at deploy time, capture settings, endpoint, alarms."""

from __future__ import annotations

import json

from cdk_helpers import logical_id

PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:000000000000:model-package/stspackagegroup/3"


def test_latest_approved_package_is_resolved_at_deploy_time(dev):
    lookup = dev.one("serving", "Custom::StsApprovedModelPackage")["Properties"]
    assert lookup["ModelPackageGroupName"] == "stsPackageGroup"
    assert lookup["ModelPackageArn"] == "" and lookup["EndpointName"] == ""
    assert lookup["MetricNames"] == ["accuracy", "precision", "recall", "f1", "auc"]
    assert lookup["Refresh"] == ""
    assert "Fn::GetAtt" in lookup["ServiceToken"]


def test_pinned_package_comes_from_config(prod):
    lookup = prod.one("serving", "Custom::StsApprovedModelPackage")["Properties"]
    assert lookup["ModelPackageArn"] == PACKAGE_ARN


def test_model_serves_the_looked_up_package_without_network(dev):
    template = dev.template("serving")
    lookup_id = logical_id(template, "Custom::StsApprovedModelPackage", "ServedPackage/Resource")
    model = dev.one("serving", "AWS::SageMaker::Model")["Properties"]
    assert model["Containers"] == [{"ModelPackageName": {"Fn::GetAtt": [lookup_id, "ModelPackageArn"]}}]
    assert model["EnableNetworkIsolation"] is True
    assert "ModelName" not in model  # generated: a new package replaces the model under a new name


def test_endpoint_config_captures_requests_and_responses_encrypted(dev, prod):
    for synth, prefix, percent in ((dev, "sts", 100), (prod, "para", 25)):
        config = synth.one("serving", "AWS::SageMaker::EndpointConfig")["Properties"]
        capture = config["DataCaptureConfig"]
        assert capture["EnableCapture"] is True
        assert capture["InitialSamplingPercentage"] == percent
        assert capture["DestinationS3Uri"] == f"s3://{prefix}-artifacts-000000000000-us-east-1/{prefix}/datacapture"
        assert sorted(o["CaptureMode"] for o in capture["CaptureOptions"]) == ["Input", "Output"]
        assert capture["CaptureContentTypeHeader"]["CsvContentTypes"] == ["text/csv"]
        assert "Fn::ImportValue" in capture["KmsKeyId"]
        assert "Fn::ImportValue" in config["KmsKeyId"]  # instance storage (AwsSolutions does not check this)
        assert "EndpointConfigName" not in config  # generated, so a replacement never clashes
        (variant,) = config["ProductionVariants"]
        assert variant["VariantName"] == "AllTraffic" and variant["InstanceType"] == "ml.m5.large"


def test_endpoint_has_the_operator_name_and_follows_the_config(dev):
    template = dev.template("serving")
    config_id = logical_id(template, "AWS::SageMaker::EndpointConfig", "Endpoint/Config")
    endpoint = dev.one("serving", "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == "sts-endpoint"
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    assert {"Key": "project", "Value": "stsmodelmonitor"} in endpoint["Tags"]


def test_alarms_on_5xx_and_latency(dev, prod):
    for synth, latency_ms in ((dev, 1000), (prod, 250)):
        alarms = {a["Properties"]["MetricName"]: a["Properties"] for a in synth.resources("serving", "AWS::CloudWatch::Alarm").values()}
        assert set(alarms) == {"Invocation5XXErrors", "ModelLatency"}
        errors, latency = alarms["Invocation5XXErrors"], alarms["ModelLatency"]
        assert errors["Threshold"] == 1 and errors["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert latency["Threshold"] == latency_ms * 1000  # microseconds
        assert latency["ExtendedStatistic"] == "p90" and latency["EvaluationPeriods"] == 3
        for alarm in alarms.values():
            assert {d["Name"] for d in alarm["Dimensions"]} == {"EndpointName", "VariantName"}
            assert alarm["AlarmActions"] and alarm["TreatMissingData"] == "notBreaching"


def test_outputs(dev):
    outputs = dev.template("serving")["Outputs"]
    assert outputs["EndpointName"]["Value"] == "sts-endpoint"
    assert outputs["DataCaptureUri"]["Value"] == "s3://sts-artifacts-000000000000-us-east-1/sts/datacapture"
    assert "ServedModelPackageArn" in outputs


def test_the_endpoints_own_log_group_is_declared_the_shared_job_groups_are_not(dev, prod):
    """SageMaker logs the endpoint to /aws/sagemaker/Endpoints/{endpoint} and jobs to the
    account-wide /aws/sagemaker/ProcessingJobs and /TrainingJobs (AWS docs, "Log groups
    and streams that Amazon SageMaker AI sends to Amazon CloudWatch Logs"). The
    endpoint's group is ours: retention, our key, removed with the stack in dev only,
    created before the endpoint. The shared groups belong to every workload in the
    account: declaring them would fail where they exist and delete others' logs."""
    for synth, endpoint, policy in ((dev, "sts-endpoint", "Delete"), (prod, "para-endpoint", "Retain")):
        template = synth.template("serving")
        name = f"/aws/sagemaker/Endpoints/{endpoint}"
        (lid,) = [lid for lid, r in template["Resources"].items()
                  if r["Type"] == "AWS::Logs::LogGroup" and r["Properties"].get("LogGroupName") == name]
        group = template["Resources"][lid]
        assert group["Properties"]["RetentionInDays"] == 30
        assert "Fn::ImportValue" in json.dumps(group["Properties"]["KmsKeyId"])  # the foundation key
        assert group["DeletionPolicy"] == policy and group["UpdateReplacePolicy"] == policy
        (endpoint_resource,) = synth.resources("serving", "AWS::SageMaker::Endpoint").values()
        assert lid in endpoint_resource["DependsOn"]
    for synth in (dev, prod):
        for kind in ("foundation", "training", "serving", "monitoring"):
            names = [r["Properties"].get("LogGroupName") for r in synth.resources(kind, "AWS::Logs::LogGroup").values()]
            assert not {"/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs"} & set(names)


LAMBDA_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])  # the Lambda runtime's /var/task
import approved_package
print(json.dumps({n: m.__file__ for n, m in sys.modules.items() if n.split(".")[0] in ("stscontracts", "approved_package")}))
"""


def test_the_approved_package_lambda_ships_the_contracts_it_runs(dev, subprocess_env):
    """Its logic is stscontracts.served_package (the local runtime runs the same module): the function's
    asset in cdk.out must carry the package, and the handler must import it from there (isolated
    interpreter, -I: no PYTHONPATH, no current folder)."""
    import subprocess
    import sys

    functions = [r for r in dev.template("serving")["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == "approved_package.handler"]
    (function,) = functions
    asset = dev.outdir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert (asset / "stscontracts" / "served_package.py").is_file() and (asset / "cfn_response.py").is_file()
    proc = subprocess.run([sys.executable, "-I", "-c", LAMBDA_PROBE, str(asset)], env=subprocess_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    origins = json.loads(proc.stdout)
    assert "stscontracts.served_package" in origins
    assert all(path.startswith(str(asset)) for path in origins.values()), origins
