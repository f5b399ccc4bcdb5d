"""Foundation stack intents: key, buckets, execution role, registry, retention per profile."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from cdk_helpers import logical_id, policy_statements


def test_key_rotates_and_lets_only_logs_alarms_and_registry_events_in(dev):
    key = dev.one("foundation", "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    services = {
        json.dumps(s["Principal"].get("Service"))
        for s in key["KeyPolicy"]["Statement"]
        if "Service" in s.get("Principal", {})
    }
    assert services == {'"logs.us-east-1.amazonaws.com"', '"cloudwatch.amazonaws.com"', '"events.amazonaws.com"'}
    events = next(s for s in key["KeyPolicy"]["Statement"] if s.get("Principal", {}).get("Service") == "events.amazonaws.com")
    # Only through SNS, only for the alarm topic (EventBridge's KMS requests carry no source ARN).
    assert events["Condition"]["StringEquals"]["kms:ViaService"] == "sns.us-east-1.amazonaws.com"
    assert events["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"] == "arn:aws:sns:us-east-1:000000000000:sts-alarms"


def test_artifact_bucket_is_encrypted_private_versioned_logged(dev):
    template = dev.assertions("foundation")
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "sts-artifacts-000000000000-us-east-1",
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": Match.any_value()},
                    }
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "sts-artifacts/"},
        },
    )


def test_every_bucket_refuses_plain_http(dev):
    policies = dev.resources("foundation", "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        denies = [
            s for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies, policy


def test_lifecycle_expires_captured_data_and_old_versions(dev, prod):
    for synth, prefix, days in ((dev, "sts", 30), (prod, "para", 400)):
        bucket = next(
            r for r in synth.resources("foundation", "AWS::S3::Bucket").values()
            if r["Properties"]["BucketName"].startswith(f"{prefix}-artifacts-")
        )
        rules = {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
        for name in ("datacapture", "ground-truth", "monitoring"):
            assert rules[f"Expire-{name}"]["Prefix"] == f"{prefix}/{name}/"
            assert rules[f"Expire-{name}"]["ExpirationInDays"] == days
        assert rules["ExpireOldVersions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
        # Training inputs, code and pipeline outputs do not expire.
        assert not any(r.get("Prefix", "").startswith(f"{prefix}/pipelines") for r in rules.values())


def test_execution_role_is_least_privilege(dev):
    template = dev.template("foundation")
    role_id = logical_id(template, "AWS::IAM::Role", "ExecutionRole/Role")
    role = template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "000000000000"}},
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role  # no AmazonSageMakerFullAccess, no AWS managed policy
    statements = {s["Sid"]: s for s in policy_statements(template, role_id)}
    bucket_arn = "arn:aws:s3:::sts-artifacts-000000000000-us-east-1"
    s3_resources = [r for s in statements.values() for r in _list(s["Resource"]) if str(r).startswith("arn:aws:s3")]
    assert sorted(s3_resources) == [bucket_arn, f"{bucket_arn}/sts/*"]
    assert statements["ArtifactsList"]["Condition"] == {"StringLike": {"s3:prefix": ["sts/*", "sts/"]}}
    for sid in ("ArtifactKey", "ArtifactKeyGrantsForVolumes"):
        assert statements[sid]["Resource"] == {"Fn::GetAtt": [logical_id(template, "AWS::KMS::Key", "Store/Key"), "Arn"]}
    assert statements["PullImages"]["Resource"] == "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"
    assert statements["SageMakerLogs"]["Resource"] == "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/*"
    assert statements["Metrics"]["Condition"]["StringLike"]["cloudwatch:namespace"][0] == "stsmodelmonitor"
    passrole = statements["PassOnlyItselfOnlyToSageMaker"]
    assert passrole["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # Nothing else may pass roles, and no statement allows a service-wide action.
    for statement in statements.values():
        actions = _list(statement["Action"])
        assert all(not a.endswith(":*") for a in actions), statement
        if statement["Sid"] != "PassOnlyItselfOnlyToSageMaker":
            assert "iam:PassRole" not in actions
    # The group by its own ARN attribute; package versions with the group name's case (not lower-cased).
    register = statements["RegisterModels"]["Resource"]
    assert len(register) == 2
    assert {"Fn::GetAtt": [logical_id(template, "AWS::SageMaker::ModelPackageGroup", "ModelPackageGroup"), "ModelPackageGroupArn"]} in register
    assert "arn:aws:sagemaker:us-east-1:000000000000:model-package/stsPackageGroup/*" in register


def test_model_monitor_backend_may_pull_the_analyzer_image(prod):
    template = prod.template("foundation")
    role_id = logical_id(template, "AWS::IAM::Role", "ExecutionRole/Role")
    pull = next(s for s in policy_statements(template, role_id) if s["Sid"] == "PullImages")
    assert any("sagemaker-model-monitor-analyzer" in r for r in pull["Resource"])


def test_model_package_group_and_alarm_topic(dev):
    group = dev.one("foundation", "AWS::SageMaker::ModelPackageGroup")
    assert group["Properties"]["ModelPackageGroupName"] == "stsPackageGroup"
    topic = dev.one("foundation", "AWS::SNS::Topic")["Properties"]
    assert topic["TopicName"] == "sts-alarms" and "KmsMasterKeyId" in topic


def test_registry_events_of_this_group_notify_the_alarm_topic(dev, prod):
    """A new version pending approval and a version approved reach the alarm topic; the rule is
    this app's group only, and its target binds no unconditioned grant (the CDK's SnsTopic would)."""
    template = dev.template("foundation")
    rule = dev.one("foundation", "AWS::Events::Rule")["Properties"]
    assert rule["Name"] == "sts-model-package-events" and rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["stsPackageGroup"], "ModelApprovalStatus": ["PendingManualApproval", "Approved"]},
    }
    topic_id = logical_id(template, "AWS::SNS::Topic", "AlarmTopic/Resource")
    assert rule["Targets"] == [{"Arn": {"Ref": topic_id}, "Id": "Target0"}]
    policy = dev.one("foundation", "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
    publishers = [s for s in policy["Statement"] if isinstance(s["Principal"], dict) and s["Principal"].get("Service") == "events.amazonaws.com"]
    rule_id = logical_id(template, "AWS::Events::Rule", "ModelPackageEvents/Rule/Resource")
    assert len(publishers) == 1 and publishers[0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "000000000000"}, "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    renamed = prod.one("foundation", "AWS::Events::Rule")["Properties"]
    assert renamed["Name"] == "para-model-package-events"


def test_dev_destroys_everything_prod_retains_data_and_registry(dev, prod):
    for type_ in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::SageMaker::ModelPackageGroup"):
        assert {r["DeletionPolicy"] for r in dev.resources("foundation", type_).values()} == {"Delete"}, type_
        assert {r["DeletionPolicy"] for r in prod.resources("foundation", type_).values()} == {"Retain"}, type_
    # Dev empties both buckets on delete; prod never deletes objects.
    assert len(dev.resources("foundation", "Custom::S3AutoDeleteObjects")) == 2
    assert prod.resources("foundation", "Custom::S3AutoDeleteObjects") == {}


def test_outputs_name_what_operators_need(dev):
    outputs = dev.template("foundation")["Outputs"]
    assert outputs["ArtifactBucketName"]["Value"] == "sts-artifacts-000000000000-us-east-1"
    assert outputs["GroundTruthUri"]["Value"] == "s3://sts-artifacts-000000000000-us-east-1/sts/ground-truth"
    assert outputs["ModelPackageGroupName"]["Value"] == "stsPackageGroup"
    for key in ("KmsKeyArn", "ExecutionRoleArn", "AlarmTopicArn"):
        assert key in outputs


def _list(value):
    return value if isinstance(value, list) else [value]
