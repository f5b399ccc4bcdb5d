"""The JSON Schemas of the files that join the parts: well-formed, complete, tied to the registry.

The documents themselves are checked where the scripts and the runtime write
them: tests/processing_scripts/test_pipeline.py (evaluation, statistics,
constraints), test_monitor_job.py (the monitor's outputs of every status),
tests/stsmon/endpoint/ (capture records; the reader validates each line),
tests/stsmon/commands/test_ground_truth.py (ground-truth and capture lines).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from stscontracts import documents, metrics, names


def test_every_kind_has_one_well_formed_schema_file():
    files = sorted(p.name.removesuffix(".schema.json") for p in documents.SCHEMA_DIR.glob("*.schema.json"))
    assert files == sorted(documents.KINDS)
    for kind in documents.KINDS:
        Draft202012Validator.check_schema(documents.schema(kind))


def test_every_file_name_that_joins_parts_has_a_kind():
    assert documents.kind_of_file(f"s3://b/k/{names.RESULT_FILE}") == documents.MONITORING_RESULT
    assert set(documents.FILE_KINDS) == {names.EVALUATION_FILE, names.STATISTICS_FILE, names.CONSTRAINTS_FILE,
                                         names.VIOLATIONS_FILE, names.RESULT_FILE}
    with pytest.raises(KeyError, match="baseline.csv is not a file with a schema"):
        documents.kind_of_file(names.BASELINE_CSV)


def test_evaluation_requires_what_the_quality_gate_may_read():
    """The gate's JsonGet fails the pipeline if its metric is missing: the schema asks for every gate metric."""
    defs = documents.schema(documents.EVALUATION)["$defs"]
    assert defs["binary_block"]["required"] == list(metrics.gate_metrics(names.BINARY_CLASSIFICATION))
    assert defs["regression_block"]["required"] == list(metrics.gate_metrics(names.REGRESSION))


def test_the_enumerations_are_the_contracts_names():
    result = documents.schema(documents.MONITORING_RESULT)["properties"]
    assert result["status"]["enum"] == list(names.MONITOR_STATUSES)
    assert result["problem_type"]["enum"] == list(names.PROBLEM_TYPES)
    operators = documents.schema(documents.CONSTRAINTS)["$defs"]["operator"]["enum"]
    assert operators == list(metrics.COMPARISONS)
    violation = documents.schema(documents.VIOLATIONS)["$defs"]["violation"]["properties"]
    assert violation["constraint_check_type"]["enum"] == list(metrics.COMPARISONS)


def test_a_document_error_names_the_file_and_every_problem():
    bad = {"violations": [{"metric_name": "accuracy", "constraint_check_type": "Below"}]}
    with pytest.raises(documents.DocumentError) as caught:
        documents.validate(bad, documents.VIOLATIONS, where="s3://b/run/constraint_violations.json")
    assert caught.value.problems == [
        "violations[0]: 'description' is a required property",
        "violations[0].constraint_check_type: 'Below' is not one of ['GreaterThanThreshold', "
        "'GreaterThanOrEqualToThreshold', 'LessThanThreshold', 'LessThanOrEqualToThreshold']",
    ]
    assert str(caught.value).startswith("s3://b/run/constraint_violations.json: not a valid constraint-violations: ")
    assert caught.value.exit_code == 2


def test_importing_the_contracts_needs_no_jsonschema(subprocess_env):
    """The step scripts import the package in the SageMaker image, which has no jsonschema."""
    code = ("import sys, stscontracts.documents, stscontracts.names, stscontracts.metrics, stscontracts.records; "
            "print(sorted(m for m in sys.modules if m.startswith('jsonschema')))")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []
