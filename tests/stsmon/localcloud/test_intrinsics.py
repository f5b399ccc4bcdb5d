"""The intrinsic resolver: each function, pseudo parameters, unknown functions, unresolved values."""

from __future__ import annotations

import pytest

from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.handlers import Unresolved
from stsmon.localcloud.intrinsics import (
    IntrinsicError,
    ResourceValues,
    Scope,
    check_functions,
    evaluate_rules,
    find_references,
    resolve,
)

ENV = LocalEnvironment(region="eu-west-1")


def scope(**kw):
    base = dict(
        env=ENV,
        stack_name="sts-training",
        parameters={"Env": "dev", "BootstrapVersion": "30"},
        resources={"Bucket": ResourceValues("sts-bucket", {"Arn": "arn:aws:s3:::sts-bucket"})},
        exports={"sts-foundation:Key": "arn:key"},
        mappings={"M": {"eu-west-1": {"Image": "img-eu"}}},
        condition_defs={"IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]}},
    )
    base.update(kw)
    return Scope(**base)


@pytest.mark.parametrize(
    "expr, expected",
    [
        ({"Ref": "Bucket"}, "sts-bucket"),
        ({"Ref": "Env"}, "dev"),
        ({"Ref": "AWS::AccountId"}, "000000000000"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Ref": "AWS::StackName"}, "sts-training"),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:aws:s3:::sts-bucket"),
        ({"Fn::GetAtt": "Bucket.Arn"}, "arn:aws:s3:::sts-bucket"),
        ({"Fn::Join": ["/", ["s3:/", {"Ref": "Bucket"}, "sts", 3]]}, "s3://sts-bucket/sts/3"),
        ({"Fn::Sub": "cdk-assets-${AWS::AccountId}-${AWS::Region}"}, "cdk-assets-000000000000-eu-west-1"),
        ({"Fn::Sub": "${Bucket.Arn}/*"}, "arn:aws:s3:::sts-bucket/*"),
        ({"Fn::Sub": ["s3://${B}/${Env}/${!Literal}", {"B": {"Ref": "Bucket"}}]}, "s3://sts-bucket/dev/${Literal}"),
        ({"Fn::Select": [1, ["a", "b", "c"]]}, "b"),
        ({"Fn::Select": ["0", {"Fn::Split": [":", "x:y"]}]}, "x"),
        ({"Fn::Split": [",", "a,b"]}, ["a", "b"]),
        ({"Fn::ImportValue": "sts-foundation:Key"}, "arn:key"),
        ({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Image"]}, "img-eu"),
        ({"Fn::Base64": "hi"}, "aGk="),
        ({"Fn::GetAZs": ""}, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
        ({"Fn::If": ["IsDev", "d", "p"]}, "d"),
        ({"Fn::Not": [{"Condition": "IsDev"}]}, False),
        ({"Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "a"]}]}, True),
        ({"Fn::Or": [{"Fn::Equals": [1, "2"]}, {"Fn::Equals": [2, "2"]}]}, True),
    ],
)
def test_each_function(expr, expected):
    assert resolve({"P": expr}, scope()) == {"P": expected}


def test_no_value_removes_the_property_and_list_item():
    value = {"A": {"Ref": "AWS::NoValue"}, "B": ["x", {"Fn::If": ["IsDev", {"Ref": "AWS::NoValue"}, "y"]}]}
    assert resolve(value, scope()) == {"B": ["x"]}


@pytest.mark.parametrize(
    "expr, message",
    [
        ({"Fn::Transmogrify": ["a"]}, "Resources.R.Properties.P: unsupported intrinsic function 'Fn::Transmogrify'"),
        ({"Ref": "Nothing"}, "no parameter, pseudo parameter or resource named 'Nothing'"),
        ({"Fn::GetAtt": ["Bucket", "Nope"]}, "no attribute 'Nope' locally \\(known: Arn\\)"),
        ({"Fn::ImportValue": "other:X"}, "no stack exports 'other:X'"),
        ({"Fn::Select": [5, ["a"]]}, "out of range"),
        ({"Fn::Join": "ab"}, "Fn::Join takes"),
    ],
)
def test_errors_name_the_function_and_place(expr, message):
    with pytest.raises(IntrinsicError, match=message):
        resolve({"P": expr}, scope(), "Resources.R.Properties")


def test_check_functions_finds_unknown_functions_without_resolving():
    check_functions({"A": [{"Ref": "Anything"}, {"Fn::Sub": "x"}]})
    with pytest.raises(IntrinsicError, match=r"A\[1\].B: unsupported intrinsic function 'Fn::Length'"):
        check_functions({"A": [1, {"B": {"Fn::Length": [1]}}]})


def test_pending_resources_resolve_to_unresolved_only_when_allowed():
    s = scope(pending=frozenset({"Role"}), allow_unresolved=True)
    out = resolve(
        {
            "Arn": {"Fn::GetAtt": ["Role", "Arn"]},
            "Joined": {"Fn::Join": ["", ["x", {"Ref": "Role"}]]},
            "Sub": {"Fn::Sub": "${Role.Arn}/x"},
            "Plain": {"Ref": "Bucket"},
        },
        s,
    )
    assert out["Arn"] == Unresolved("Fn::GetAtt Role.Arn")
    assert isinstance(out["Joined"], Unresolved) and isinstance(out["Sub"], Unresolved)
    assert out["Plain"] == "sts-bucket"
    with pytest.raises(IntrinsicError, match="resource Role is not deployed yet"):
        resolve({"Ref": "Role"}, scope(pending=frozenset({"Role"})))


def test_find_references():
    refs = find_references(
        {
            "a": {"Ref": "A"},
            "b": {"Fn::GetAtt": ["B", "Arn"]},
            "c": {"Fn::Sub": ["${C.Arn}${local}${!skip}${AWS::Region}", {"local": {"Ref": "D"}}]},
            "e": {"Fn::GetAtt": "E.Arn"},
        }
    )
    assert refs == {"A", "B", "C", "D", "E", "AWS::Region"}


def test_cdk_bootstrap_rule():
    rule = {
        "CheckBootstrapVersion": {
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}]},
                    "AssertDescription": "CDK bootstrap stack version 6 required.",
                }
            ]
        }
    }
    evaluate_rules(rule, scope())
    with pytest.raises(IntrinsicError, match="version 6 required"):
        evaluate_rules(rule, scope(parameters={"BootstrapVersion": "5"}))
