"""SageMaker pipeline expressions, evaluated the way SageMaker does. Pure: no files, no clock.

A step's arguments may hold, anywhere:

- ``{"Get": "Parameters.X"}`` — a pipeline parameter's value;
- ``{"Get": "Execution.X"}`` — an execution variable (``PipelineExecutionId``,
  ``PipelineExecutionArn``, ``PipelineName``, ``PipelineArn``,
  ``StartDateTime``, ``CurrentDateTime``);
- ``{"Get": "Steps.S.<path>"}`` — a property of a step that succeeded
  (``Outputs['train']`` picks the list element whose ``*Name`` is ``train``);
- ``{"Std:Join": {"On": ",", "Values": [...]}}``;
- ``{"Std:JsonGet": {"PropertyFile": {"Get": "Steps.S.PropertyFiles.F"} | "S3Uri": ..., "Path": "a.b[0]"}}``.

Condition steps compare with ``Equals``, ``GreaterThan(OrEqualTo)``,
``LessThan(OrEqualTo)``, ``In``, ``Not``, ``Or``: numbers as numbers
(numeric strings too), anything else by its string form.

What an expression cannot evaluate raises :class:`StepFailed` with the place
(``Steps.Train.Arguments.HyperParameters...``) and the reason: the step that
needed it fails with that reason. The only outside data an expression reads
— the JSON file behind ``Std:JsonGet`` — comes through the ``read_json``
callable the :class:`Evaluator` is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .pipelines import StepFailed, StepSpec

_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_PROPERTY_FILE = re.compile(r"^Steps\.([^.]+)\.PropertyFiles\.(.+)$")
_ORDER = {
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def execution_time_value(moment: datetime) -> str:
    """``Execution.StartDateTime`` / ``CurrentDateTime`` as a step receives them: ISO-8601 UTC with
    milliseconds and ``Z`` (``2033-05-17T12:30:00.000Z``), the form of SageMaker's timestamps.

    SageMaker does not document the string; processing_scripts/monitor.py parses
    this form and epoch seconds (what the SageMaker SDK's local mode passes).
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def param_str(value: Any) -> str:
    """A value as SageMaker passes it on as a string: booleans ``true``/``false``, else ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_path(path: str) -> list[str | int]:
    """``a.b[0]['c']`` -> ``["a", "b", 0, "c"]``."""
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse path {path!r} at {path[pos:]!r}")
        name, index, quoted1, quoted2 = m.groups()
        if name is not None:
            tokens.append(name)
        elif index is not None:
            tokens.append(int(index))
        else:
            tokens.append(quoted1 if quoted1 is not None else quoted2)
        pos = m.end()
    return tokens


def walk_path(data: Any, tokens: list[str | int], where: str) -> Any:
    """Follow ``tokens`` into ``data``. A string index into a list picks the
    element whose ``*Name`` field equals it (``Outputs['train']``)."""
    current = data
    for i, tok in enumerate(tokens):
        shown = where + "".join(f".{t}" if isinstance(t, str) else f"[{t}]" for t in tokens[: i + 1])
        if isinstance(current, list):
            if isinstance(tok, int):
                if not 0 <= tok < len(current):
                    raise StepFailed(f"{shown}: index out of range")
                current = current[tok]
                continue
            match = [e for e in current if isinstance(e, dict) and any(k.endswith("Name") and v == tok for k, v in e.items())]
            if not match:
                raise StepFailed(f"{shown}: no element named {tok!r}")
            current = match[0]
        elif isinstance(current, dict):
            if tok not in current:
                raise StepFailed(f"{shown}: not found")
            current = current[tok]
        else:
            raise StepFailed(f"{shown}: not found")
    return current


def equal(a: Any, b: Any) -> bool:
    """``Equals``/``In``: as numbers when both are numbers (or numeric strings), else as strings."""
    try:
        x, y = comparable(a, b, "")
        return x == y
    except StepFailed:
        return param_str(a) == param_str(b)


def comparable(a: Any, b: Any, where: str) -> tuple[Any, Any]:
    """The pair an ordering condition compares: floats, or two non-numeric strings as they are."""
    if isinstance(a, str) and isinstance(b, str):
        try:
            return float(a), float(b)
        except ValueError:
            return a, b
    try:
        return float(a), float(b)
    except (TypeError, ValueError):
        raise StepFailed(f"{where}: cannot compare {a!r} with {b!r}") from None


class Evaluator:
    """Evaluates expressions against one execution's state.

    ``parameters``: the pipeline parameters' values. ``variables()``: the
    execution variables now (called per use: ``CurrentDateTime`` moves).
    ``properties``: step name -> properties of the steps that succeeded
    (read when evaluated, so it may grow). ``steps``: the definition's steps
    (their ``PropertyFiles``). ``read_json(uri)``: the parsed JSON object at an
    ``s3://`` URI (raises ``FileNotFoundError`` when there is none,
    ``ValueError`` when it is not JSON).
    """

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        variables: Callable[[], Mapping[str, Any]],
        properties: Mapping[str, Mapping[str, Any]],
        steps: Mapping[str, StepSpec],
        read_json: Callable[[str], Any],
    ) -> None:
        self.parameters = parameters
        self.variables = variables
        self.properties = properties
        self.steps = steps
        self.read_json = read_json

    def evaluate(self, value: Any, where: str) -> Any:
        """``value`` with every expression in it replaced by its value."""
        if isinstance(value, dict):
            if len(value) == 1:
                (key, arg), = value.items()
                if key == "Get" and isinstance(arg, str):
                    return self.get(arg, where)
                if key == "Std:Join":
                    values = [self.evaluate(v, where) for v in arg.get("Values", [])]
                    return str(arg.get("On", "")).join(param_str(v) for v in values)
                if key == "Std:JsonGet":
                    return self.json_get(arg, where)
                if key.startswith("Std:"):
                    raise StepFailed(f"{where}: unsupported function {key}")
            return {k: self.evaluate(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.evaluate(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def get(self, path: str, where: str) -> Any:
        """``{"Get": path}``."""
        head, _, rest = path.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise StepFailed(f"{where}: no pipeline parameter {rest!r}")
            return self.parameters[rest]
        if head == "Execution":
            variables = self.variables()
            if rest not in variables:
                raise StepFailed(f"{where}: execution variable {rest!r} is not available locally")
            return variables[rest]
        if head == "Steps":
            step, _, prop_path = rest.partition(".")
            props = self.properties.get(step)
            if props is None:
                raise StepFailed(f"{where}: step {step} has not succeeded, its properties are not available")
            tokens = parse_path(prop_path) if prop_path else []
            return walk_path(props, tokens, f"Steps.{step}")
        raise StepFailed(f"{where}: cannot evaluate {{'Get': {path!r}}}")

    def json_get(self, arg: dict[str, Any], where: str) -> Any:
        """``{"Std:JsonGet": arg}``: a value in a JSON file a step wrote (a property file) or at an S3 URI."""
        if "PropertyFile" in arg:
            ref = arg["PropertyFile"]
            ref_path = ref.get("Get") if isinstance(ref, dict) else None
            m = _PROPERTY_FILE.match(ref_path or "")
            if not m:
                raise StepFailed(f"{where}: Std:JsonGet PropertyFile must be Get Steps.<step>.PropertyFiles.<name>")
            step, file_name = m.groups()
            spec = self.steps.get(step)
            files = {f.get("PropertyFileName"): f for f in (spec.raw.get("PropertyFiles") or [])} if spec else {}
            if file_name not in files:
                raise StepFailed(f"{where}: step {step} declares no property file {file_name!r}")
            pf = files[file_name]
            output_uri = self.get(
                f"Steps.{step}.ProcessingOutputConfig.Outputs['{pf['OutputName']}'].S3Output.S3Uri", where
            )
            uri = output_uri.rstrip("/") + "/" + pf["FilePath"].lstrip("/")
        elif "S3Uri" in arg:
            uri = self.evaluate(arg["S3Uri"], where)
        else:
            raise StepFailed(f"{where}: Std:JsonGet needs PropertyFile or S3Uri")
        try:
            data = self.read_json(uri)
        except FileNotFoundError:
            raise StepFailed(f"{where}: Std:JsonGet: {uri} does not exist") from None
        except ValueError as exc:
            raise StepFailed(f"{where}: Std:JsonGet: {uri} is not JSON: {exc}") from None
        try:
            return walk_path(data, parse_path(arg.get("Path", "")), uri)
        except (StepFailed, ValueError) as exc:
            raise StepFailed(f"{where}: Std:JsonGet path {arg.get('Path')!r} in {uri}: {exc}") from None

    def condition(self, cond: dict[str, Any], where: str) -> bool:
        """One entry of a Condition step's ``Conditions``."""
        ctype = cond.get("Type")
        if ctype == "Not":
            inner = cond.get("Condition") or cond.get("Expression")
            return not self.condition(inner, where)
        if ctype == "Or":
            return any(self.condition(c, where) for c in cond.get("Conditions") or [])
        if ctype == "In":
            value = self.evaluate(cond.get("QueryValue"), where)
            return any(equal(value, self.evaluate(v, where)) for v in cond.get("Values") or [])
        left = self.evaluate(cond.get("LeftValue"), where)
        right = self.evaluate(cond.get("RightValue"), where)
        if ctype == "Equals":
            return equal(left, right)
        if ctype not in _ORDER:
            raise StepFailed(f"{where}: condition type {ctype!r} is not supported")
        a, b = comparable(left, right, where)
        return _ORDER[ctype](a, b)
