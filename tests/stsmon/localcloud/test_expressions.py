"""Pipeline expressions on their own: no files, no processes (the executor's tests run them in place).

The expression forms are SageMaker's pipeline definition JSON (Version 2020-12-01) as the
SageMaker Python SDK writes them (sagemaker-core 2.27.0, the pinned version):
``Std:Join`` and ``Std:JsonGet`` with ``{"PropertyFile": {"Get": "Steps.S.PropertyFiles.F"}}``
(sagemaker/core/workflow/functions.py, Join.expr and JsonGet.expr); the condition types of
sagemaker/core/workflow/conditions.py (ConditionTypeEnum; ConditionNot writes its inner
condition under ``Condition``, ConditionIn ``QueryValue``/``Values``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stsmon.localcloud.expressions import Evaluator, execution_time_value, parse_path, walk_path
from stsmon.localcloud.pipelines import StepFailed, collect_steps

DEFINITION = {
    "Version": "2020-12-01",
    "Steps": [
        {"Name": "Evaluate", "Type": "Processing", "Arguments": {},
         "PropertyFiles": [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}]},
        {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": []}},
    ],
}
EVALUATE_PROPS = {"ProcessingOutputConfig": {"Outputs": [
    {"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://b/run/evaluation"}},
    {"OutputName": "other", "S3Output": {"S3Uri": "s3://b/run/other"}},
]}}
FILES = {"s3://b/run/evaluation/evaluation.json": {"binary_classification_metrics": {"accuracy": {"value": 0.81}}}}


def read_json(uri: str):
    if uri not in FILES:
        raise FileNotFoundError(uri)
    return FILES[uri]


def evaluator(properties=None, **parameters) -> Evaluator:
    return Evaluator(
        parameters={"Threshold": 0.7, "Flag": True, "Name": "sts", **parameters},
        variables=lambda: {"PipelineExecutionId": "abc123", "StartDateTime": "2033-05-17T12:30:00.000Z"},
        properties={"Evaluate": EVALUATE_PROPS} if properties is None else properties,
        steps=collect_steps(DEFINITION),
        read_json=read_json,
    )


def test_get_join_and_json_get_evaluate_inside_any_structure():
    ev = evaluator()
    value = ev.evaluate({
        "a": [{"Get": "Parameters.Threshold"}, {"Get": "Execution.PipelineExecutionId"}],
        "uri": {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
        "joined": {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Parameters.Name"}, {"Get": "Parameters.Flag"}]}},
        "accuracy": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                                     "Path": "binary_classification_metrics.accuracy.value"}},
        "plain": {"two": "keys", "stay": 1},
    }, "Steps.X.Arguments")
    assert value == {
        "a": [0.7, "abc123"],
        "uri": "s3://b/run/evaluation",
        "joined": "s3://b/sts/true",  # booleans joined as SageMaker writes them
        "accuracy": 0.81,
        "plain": {"two": "keys", "stay": 1},
    }
    direct = ev.evaluate({"Std:JsonGet": {"S3Uri": "s3://b/run/evaluation/evaluation.json",
                                          "Path": "binary_classification_metrics['accuracy'].value"}}, "w")
    assert direct == 0.81


@pytest.mark.parametrize("expression, problem", [
    ({"Get": "Parameters.Missing"}, "Steps.X.Arguments.k: no pipeline parameter 'Missing'"),
    ({"Get": "Execution.PipelineExecutionArn"}, "execution variable 'PipelineExecutionArn' is not available"),
    ({"Get": "Steps.Check.Outcome"}, "step Check has not succeeded"),
    ({"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['nope']"}, "no element named 'nope'"),
    ({"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs[5]"}, "index out of range"),
    ({"Get": "Other.X"}, "cannot evaluate"),
    ({"Std:Split": {}}, "unsupported function Std:Split"),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Nope"}, "Path": "a"}},
     "step Evaluate declares no property file 'Nope'"),
    ({"Std:JsonGet": {"S3Uri": "s3://b/missing.json", "Path": "a"}}, "s3://b/missing.json does not exist"),
    ({"Std:JsonGet": {"S3Uri": "s3://b/run/evaluation/evaluation.json", "Path": "regression_metrics.mae"}},
     "Std:JsonGet path 'regression_metrics.mae'"),
    ({"Std:JsonGet": {"Path": "a"}}, "needs PropertyFile or S3Uri"),
])
def test_what_cannot_be_evaluated_fails_the_step_naming_the_place(expression, problem):
    with pytest.raises(StepFailed) as caught:
        evaluator().evaluate({"k": expression}, "Steps.X.Arguments")
    assert problem in caught.value.reason


def test_a_json_get_of_a_file_that_is_not_json_says_so():
    def broken(uri):
        raise ValueError("Expecting value: line 1 column 1")

    ev = Evaluator(parameters={}, variables=dict, properties={"Evaluate": EVALUATE_PROPS},
                   steps=collect_steps(DEFINITION), read_json=broken)
    with pytest.raises(StepFailed, match="is not JSON: Expecting value"):
        ev.evaluate({"Std:JsonGet": {"S3Uri": "s3://b/x.json", "Path": "a"}}, "w")


def test_properties_are_read_when_evaluated():
    """A step's properties become visible to later expressions once it succeeds (the runner adds them)."""
    properties: dict = {}
    ev = evaluator(properties=properties)
    with pytest.raises(StepFailed):
        ev.evaluate({"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['other'].S3Output.S3Uri"}, "w")
    properties["Evaluate"] = EVALUATE_PROPS
    assert ev.evaluate({"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['other'].S3Output.S3Uri"}, "w") == "s3://b/run/other"


ACCURACY = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                            "Path": "binary_classification_metrics.accuracy.value"}}


@pytest.mark.parametrize("condition, outcome", [
    ({"Type": "GreaterThanOrEqualTo", "LeftValue": ACCURACY, "RightValue": {"Get": "Parameters.Threshold"}}, True),
    ({"Type": "GreaterThan", "LeftValue": ACCURACY, "RightValue": 0.81}, False),
    ({"Type": "LessThan", "LeftValue": "0.5", "RightValue": 1}, True),  # a numeric string compares as a number
    ({"Type": "LessThanOrEqualTo", "LeftValue": "b", "RightValue": "a"}, False),  # two strings as strings
    ({"Type": "Equals", "LeftValue": "1.0", "RightValue": 1}, True),
    ({"Type": "Equals", "LeftValue": {"Get": "Parameters.Flag"}, "RightValue": "true"}, True),
    ({"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["x", "sts"]}, True),
    ({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, True),
    ({"Type": "Or", "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                                   {"Type": "GreaterThan", "LeftValue": 3, "RightValue": 2}]}, True),
])
def test_conditions(condition, outcome):
    assert evaluator().condition(condition, "Steps.Check.Conditions[0]") is outcome


@pytest.mark.parametrize("condition, problem", [
    ({"Type": "GreaterThan", "LeftValue": "high", "RightValue": 1}, "cannot compare 'high' with 1"),
    ({"Type": "Matches", "LeftValue": 1, "RightValue": 1}, "condition type 'Matches' is not supported"),
])
def test_conditions_that_cannot_be_decided(condition, problem):
    with pytest.raises(StepFailed, match=problem):
        evaluator().condition(condition, "Steps.Check.Conditions[0]")


def test_paths_and_the_execution_time_form():
    assert parse_path("a.b[0]['c d'][\"e\"]") == ["a", "b", 0, "c d", "e"]
    with pytest.raises(ValueError, match="cannot parse path"):
        parse_path("a..b[")
    data = {"Outputs": [{"OutputName": "train", "S3Uri": "s3://x"}]}
    assert walk_path(data, ["Outputs", "train", "S3Uri"], "Steps.P") == "s3://x"
    assert execution_time_value(datetime(2033, 5, 17, 12, 30, 0, 250999, tzinfo=UTC)) == "2033-05-17T12:30:00.250Z"
