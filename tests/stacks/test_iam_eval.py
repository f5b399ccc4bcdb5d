"""The evaluator behind the authorization check, against the rules of the IAM User Guide.

Each case names the rule it follows ("Policy evaluation logic", "Condition
operators", "ARN matching", KMS "Key policies"), so a wrong evaluator cannot
make tests/stacks/test_authorization.py pass.
"""

from __future__ import annotations

import pytest

from iam_eval import (
    Request,
    Unsupported,
    arn_match,
    evaluate,
    role,
    service,
    unsupported_condition_keys,
)

ACCOUNT = "111122223333"
ROLE = role(f"arn:aws:iam::{ACCOUNT}:role/worker")
PKG = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/stsPackageGroup/1"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def allow(action, resource, **extra):
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}]}


def test_resource_matching_is_case_sensitive_and_action_matching_is_not():
    """IAM User Guide, "IAM JSON policy elements: Resource": ARNs are case sensitive;
    "Action": action names are not."""
    request = Request(ROLE, "sagemaker:DescribeModelPackage", PKG)
    lower = allow("sagemaker:describemodelpackage", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/stspackagegroup/*")
    exact = allow("sagemaker:describemodelpackage", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/stsPackageGroup/*")
    assert not evaluate(request, identity=[lower])
    assert evaluate(request, identity=[exact])


def test_arn_parts_are_matched_separately_with_wildcards():
    assert arn_match("arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/*", "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/ProcessingJobs:log-stream:j/algo-1")
    assert arn_match("arn:aws:sns:*:1:alarms", "arn:aws:sns:eu-west-1:1:alarms")
    assert not arn_match("arn:aws:sns:*:1:alarms", "arn:aws:sns:eu-west-1:2:alarms")
    assert arn_match("arn:aws:s3:::b/p?/*", "arn:aws:s3:::b/p1/x") and not arn_match("arn:aws:s3:::b/p?/*", "arn:aws:s3:::b/p12/x")
    # A "." is a character, not a regex wildcard.
    assert not arn_match("arn:aws:s3:::a.b/*", "arn:aws:s3:::axb/k")


def test_explicit_deny_wins_and_no_allow_is_an_implicit_deny():
    """"Policy evaluation logic": an explicit Deny in any policy overrides every Allow."""
    request = Request(ROLE, "sagemaker:DescribeModelPackage", PKG)
    deny = {"Statement": [{"Effect": "Deny", "Action": "sagemaker:*", "Resource": "*"}]}
    assert not evaluate(request, identity=[allow("sagemaker:*", "*"), deny])
    decision = evaluate(request, identity=[])
    assert not decision and "implicit" in decision.reason


def test_missing_condition_keys_follow_the_operator():
    """"Condition operators": a key absent from the request makes a positive operator
    false, a negated operator true, an ...IfExists operator true; Null tests presence."""
    bucket = "arn:aws:s3:::b"
    def decide(condition, context):
        return bool(evaluate(Request(ROLE, "s3:ListBucket", bucket, context), identity=[allow("s3:ListBucket", bucket, Condition=condition)]))
    assert not decide({"StringLike": {"s3:prefix": "sts/*"}}, {})
    assert decide({"StringLike": {"s3:prefix": "sts/*"}}, {"s3:prefix": "sts/x/"})
    assert not decide({"StringLike": {"s3:prefix": "sts/*"}}, {"s3:prefix": "other/"})
    assert decide({"StringLikeIfExists": {"s3:prefix": "sts/*"}}, {})
    assert decide({"StringNotEquals": {"s3:prefix": "x"}}, {})
    assert decide({"Null": {"s3:prefix": "true"}}, {}) and not decide({"Null": {"s3:prefix": "true"}}, {"s3:prefix": "a"})


def test_bool_secure_transport_deny_applies_only_to_plain_http():
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:alarms"
    policy = {"Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "sns:Publish", "Resource": topic, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic},
    ]}
    cw = service("cloudwatch.amazonaws.com")
    assert evaluate(Request(cw, "sns:Publish", topic, {"aws:SecureTransport": "true"}), resource_policy=policy)
    assert not evaluate(Request(cw, "sns:Publish", topic, {"aws:SecureTransport": "false"}), resource_policy=policy)


def test_a_service_principal_needs_the_resource_policy_and_its_conditions():
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:alarms"
    alarm = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:sts-endpoint-5xx"
    policy = {"Statement": [{
        "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic,
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                      "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:sts-*"}},
    }]}
    cw = service("cloudwatch.amazonaws.com")
    ok = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": alarm}
    assert evaluate(Request(cw, "sns:Publish", topic, ok), resource_policy=policy)
    assert not evaluate(Request(cw, "sns:Publish", topic, {**ok, "aws:SourceArn": alarm.replace("sts-", "other-")}), resource_policy=policy)
    assert not evaluate(Request(cw, "sns:Publish", topic, {**ok, "aws:SourceAccount": "999999999999"}), resource_policy=policy)
    assert not evaluate(Request(cw, "sns:Publish", topic, ok), resource_policy=None)
    assert not evaluate(Request(service("events.amazonaws.com"), "sns:Publish", topic, ok), resource_policy=policy)


def test_a_resource_policy_naming_the_root_does_not_grant_by_itself():
    """Same account: a resource policy Allow for the role itself grants; one for the
    account (root) only delegates to the role's identity policies."""
    obj = "arn:aws:s3:::b/k"
    to_root = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "s3:GetObject", "Resource": obj}]}
    to_role = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE.arn}, "Action": "s3:GetObject", "Resource": obj}]}
    request = Request(ROLE, "s3:GetObject", obj)
    assert not evaluate(request, resource_policy=to_root)
    assert evaluate(request, resource_policy=to_role)


def test_kms_needs_the_key_policy():
    """KMS Developer Guide, "Key policies": an IAM policy alone never gives access to
    a key; the key policy must allow the principal or delegate to IAM via the root."""
    request = Request(ROLE, "kms:Decrypt", KEY, {"kms:ViaService": "s3.us-east-1.amazonaws.com"})
    identity = [allow("kms:Decrypt", KEY)]
    root = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]}
    only_logs = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"}, "Action": "kms:*", "Resource": "*"}]}
    assert evaluate(request, identity=identity, key_policy=root)
    assert not evaluate(request, identity=identity, key_policy=only_logs)
    assert not evaluate(request, identity=[], key_policy=root)
    with pytest.raises(ValueError):
        evaluate(request, identity=identity)


def test_unknown_operators_and_keys_never_pass_silently():
    request = Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:SourceIp": "10.0.0.1"})
    policy = allow("s3:GetObject", "arn:aws:s3:::b/*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    with pytest.raises(Unsupported):
        evaluate(request, identity=[policy])
    # s3:GetBucketLocation has no s3:prefix key (Service Authorization Reference): a request cannot carry one.
    with pytest.raises(Unsupported, match="s3:prefix"):
        evaluate(Request(ROLE, "s3:GetBucketLocation", "arn:aws:s3:::b", {"s3:prefix": "sts/"}), identity=[])
    with pytest.raises(Unsupported, match="not an action"):
        evaluate(Request(ROLE, "s3:GetObjects", "arn:aws:s3:::b/k"), identity=[])


def test_dead_grants_are_found():
    """A condition key the action never carries makes the statement dead for that action."""
    dead = {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": "arn:aws:s3:::b",
            "Condition": {"StringLike": {"s3:prefix": ["sts/*"]}}}
    assert unsupported_condition_keys(dead) == ["s3:GetBucketLocation never carries s3:prefix"]
    logs = {"Effect": "Allow", "Action": ["kms:Decrypt*", "kms:GenerateDataKey*"], "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*"}}}
    assert unsupported_condition_keys(logs) == []
