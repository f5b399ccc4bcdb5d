"""The files that join the parts, as JSON Schemas, and their validation.

``schemas/{kind}.schema.json`` (JSON Schema 2020-12) describes each kind of
document one part writes and another reads:

==================  ==============================  ==========================================
kind                file                            written by -> read by
==================  ==============================  ==========================================
capture-record      a line of a capture file        the endpoint -> the monitor, ground truth
ground-truth-record a line of a ground-truth file   ``stsmon ground-truth`` -> the monitor
evaluation          ``evaluation.json``             evaluate.py -> the gate, the registry
statistics          ``statistics.json``             baseline.py, the monitor -> report, registry
constraints         ``constraints.json``            baseline.py -> the monitor, alarms
violations          ``constraint_violations.json``  the monitor -> people, Model Monitor tools
monitoring-result   ``monitoring_result.json``      the monitor -> the local runtime, reports
data-quality-       ``statistics.json`` of the      data_quality_baseline.py, the monitor ->
statistics          data-quality baseline / output  the check, report, registry, Model Monitor
data-quality-       ``constraints.json`` of the     data_quality_baseline.py -> the monitor,
constraints         data-quality baseline           Model Monitor's DataQualityJobDefinition
data-quality-       ``constraint_violations.json``  the monitor -> people, Model Monitor tools
violations          of the data-quality output
==================  ==============================  ==========================================

The data-quality files have the same names as the model-quality ones (Model
Monitor's); they live in their own folders, so :data:`FILE_KINDS` (by name)
names only the model-quality kinds.

Validation uses the maintained ``jsonschema`` library. It is not in the
SageMaker scikit-learn image (aws/deep-learning-containers
``docker/sklearn/1.9-0/uv.lock`` has no jsonschema), so the step scripts do
not validate in the container; the schemas are checked against the scripts'
real outputs in the test suite, and the local runtime validates what it
reads (capture records, monitoring results). ``jsonschema`` is imported only
when something is validated, so importing this module costs nothing there.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import names
from .errors import ContractError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

CAPTURE_RECORD = "capture-record"
GROUND_TRUTH_RECORD = "ground-truth-record"
EVALUATION = "evaluation"
STATISTICS = "statistics"
CONSTRAINTS = "constraints"
VIOLATIONS = "constraint-violations"
MONITORING_RESULT = "monitoring-result"
DATA_QUALITY_STATISTICS = "data-quality-statistics"
DATA_QUALITY_CONSTRAINTS = "data-quality-constraints"
DATA_QUALITY_VIOLATIONS = "data-quality-violations"
KINDS = (CAPTURE_RECORD, GROUND_TRUTH_RECORD, EVALUATION, STATISTICS, CONSTRAINTS, VIOLATIONS, MONITORING_RESULT,
         DATA_QUALITY_STATISTICS, DATA_QUALITY_CONSTRAINTS, DATA_QUALITY_VIOLATIONS)

#: The kind of each file name that joins parts.
FILE_KINDS = {
    names.EVALUATION_FILE: EVALUATION,
    names.STATISTICS_FILE: STATISTICS,
    names.CONSTRAINTS_FILE: CONSTRAINTS,
    names.VIOLATIONS_FILE: VIOLATIONS,
    names.RESULT_FILE: MONITORING_RESULT,
}


class DocumentError(ContractError):
    """A document that breaks its schema: the message names the document and every problem."""

    def __init__(self, kind: str, where: str, problems: list[str]) -> None:
        head = f"{where}: not a valid {kind}" if where else f"not a valid {kind}"
        super().__init__(f"{head}: " + "; ".join(problems))
        self.kind = kind
        self.where = where
        self.problems = problems


@lru_cache(maxsize=None)
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind of document (a KeyError names the known kinds)."""
    if kind not in KINDS:
        raise KeyError(f"no schema for {kind!r} (known: {', '.join(KINDS)})")
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator(kind: str) -> Any:
    try:
        from jsonschema import Draft202012Validator
    except ImportError:  # pragma: no cover - the SageMaker container has no jsonschema (see the docstring)
        raise ContractError("validating a document needs the jsonschema package (pip install -r requirements.txt)") from None
    document_schema = schema(kind)
    Draft202012Validator.check_schema(document_schema)
    return Draft202012Validator(document_schema)


def _where(error: Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(the document)"


def _what(error: Any) -> str:
    # A pattern says nothing to a person; the schema's description of the value does.
    # The same for a choice between forms, whose default message repeats the whole document.
    if error.validator == "pattern" and error.schema.get("description"):
        return f"{error.instance!r} is not {error.schema['description']}"
    if error.validator in ("oneOf", "anyOf") and error.schema.get("description"):
        return f"must have {error.schema['description']}"
    return error.message


def problems(document: Any, kind: str) -> list[str]:
    """Every way ``document`` breaks the schema of ``kind``, as ``"<path>: <what>"`` (empty: valid)."""
    validator = _validator(kind)
    if validator.is_valid(document):
        return []
    found = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{_where(e)}: {_what(e)}" for e in found]


def validate(document: Any, kind: str, *, where: str = "") -> Any:
    """Return ``document`` if it is a valid ``kind``, else raise :class:`DocumentError`
    naming ``where`` (a file, a URI) and every problem."""
    found = problems(document, kind)
    if found:
        raise DocumentError(kind, where, found)
    return document


def kind_of_file(path: str | Path) -> str:
    """The kind of a file that joins parts, by its name (``evaluation.json`` -> ``evaluation``)."""
    name = Path(path).name
    try:
        return FILE_KINDS[name]
    except KeyError:
        raise KeyError(f"{name} is not a file with a schema (known: {', '.join(FILE_KINDS)})") from None
