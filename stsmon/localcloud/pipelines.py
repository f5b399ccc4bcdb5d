"""Locally registered SageMaker pipelines (``pipelines/{name}.json``) and the
static reading of a pipeline definition (steps, step graph, what can run here).

The definition is SageMaker's JSON (``Version`` 2020-12-01): ``Parameters``,
``Steps`` (``Name``, ``Type``, ``Arguments``, ``DependsOn``,
``PropertyFiles``; Condition steps nest their branches in ``IfSteps`` /
``ElseSteps``), expressions ``{"Get": "Parameters.X" | "Execution.X" |
"Steps.S.<path>"}``, ``{"Std:Join": {"On", "Values"}}`` and
``{"Std:JsonGet": {"PropertyFile" | "S3Uri", "Path"}}``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotDeployedError, StsmonError
from ..state import StateDir
from . import LocalEnvironment

#: Step types the local executor runs.
SUPPORTED_STEP_TYPES = ("Processing", "Training", "Condition", "RegisterModel", "Fail", "Model")
PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
_STEP_REF = re.compile(r"^Steps\.([^.\[]+)")


class ExecutionError(StsmonError):
    """An execution cannot start (bad parameter, unsupported image or step)."""

    exit_code = 2


class StepFailed(Exception):
    """A step fails with ``reason`` (for people): raised by whatever runs it — expressions,
    the job container, the step itself — and recorded as the step's ``FailureReason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def pipelines_dir(state: StateDir) -> Path:
    return state.root / "pipelines"


def pipeline_record_path(state: StateDir, name: str) -> Path:
    return pipelines_dir(state) / f"{name}.json"


def pipeline_arn(env: LocalEnvironment, name: str) -> str:
    return env.arn("sagemaker", f"pipeline/{name.lower()}")


def write_pipeline(state: StateDir, record: dict[str, Any]) -> None:
    path = pipeline_record_path(state, record["PipelineName"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1)
    os.replace(tmp, path)


def remove_pipeline(state: StateDir, name: str) -> None:
    pipeline_record_path(state, name).unlink(missing_ok=True)


def load_pipeline(state: StateDir, name: str) -> dict[str, Any]:
    """A registered pipeline (``PipelineDefinition`` parsed). Raises NotDeployedError."""
    path = pipeline_record_path(state, name)
    if not path.is_file():
        known = sorted(p.stem for p in pipelines_dir(state).glob("*.json")) if pipelines_dir(state).is_dir() else []
        hint = f" (deployed: {', '.join(known)})" if known else ""
        raise NotDeployedError(
            f"pipeline {name!r} is not deployed locally in {state.root}{hint}: run `stsmon deploy` first"
        )
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class StepSpec:
    """One step of a definition, with where it sits in the graph."""

    name: str
    type: str
    raw: dict[str, Any]
    depends_on: set[str] = field(default_factory=set)
    #: (condition step, "if"/"else") when the step sits in a condition branch
    branch: tuple[str, str] | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        return self.raw.get("Arguments") or {}


def step_references(value: Any) -> set[str]:
    """Step names referenced by ``Get: Steps.X...`` anywhere in ``value``."""
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if len(v) == 1 and "Get" in v and isinstance(v["Get"], str):
                m = _STEP_REF.match(v["Get"])
                if m:
                    found.add(m.group(1))
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(value)
    return found


def collect_steps(definition: dict[str, Any]) -> dict[str, StepSpec]:
    """Every step (condition branches flattened), with its dependencies:
    ``DependsOn``, steps its expressions reference, and its condition step."""
    steps: dict[str, StepSpec] = {}

    def add(raw: dict[str, Any], branch: tuple[str, str] | None) -> None:
        name = raw.get("Name")
        if not isinstance(name, str) or not name:
            raise StsmonError(f"a step has no Name: {json.dumps(raw)[:120]}")
        if name in steps:
            raise StsmonError(f"two steps are named {name!r}")
        stype = raw.get("Type", "")
        args = raw.get("Arguments") or {}
        spec = StepSpec(name, stype, raw, branch=branch)
        depends = raw.get("DependsOn") or []
        spec.depends_on.update(depends if isinstance(depends, list) else [depends])
        if stype == "Condition":
            spec.depends_on.update(step_references(args.get("Conditions")))
        else:
            spec.depends_on.update(step_references(args))
        if branch is not None:
            spec.depends_on.add(branch[0])
        spec.depends_on.discard(name)
        steps[name] = spec
        if stype == "Condition":
            for key, label in (("IfSteps", "if"), ("ElseSteps", "else")):
                for child in args.get(key) or []:
                    add(child, (name, label))

    for raw in definition.get("Steps") or []:
        add(raw, None)
    for spec in steps.values():
        unknown = sorted(spec.depends_on - set(steps))
        if unknown:
            raise StsmonError(f"step {spec.name} refers to unknown step(s): {', '.join(unknown)}")
    _check_acyclic(steps)
    return steps


def _check_acyclic(steps: dict[str, StepSpec]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise StsmonError(f"the steps depend on each other in a cycle: {' -> '.join(path + [name])}")
        state[name] = 1
        for dep in sorted(steps[name].depends_on):
            visit(dep, path + [name])
        state[name] = 2

    for name in steps:
        visit(name, [])


def definition_problems(definition: Any) -> list[str]:
    """Why a definition cannot run locally (empty list: it can, as far as a
    static reading tells; images are checked when an execution starts)."""
    if not isinstance(definition, dict):
        return ["the definition is not a JSON object"]
    problems: list[str] = []
    if definition.get("Version") != "2020-12-01":
        problems.append(f"Version {definition.get('Version')!r} is not 2020-12-01")
    for param in definition.get("Parameters") or []:
        if param.get("Type", "String") not in PARAMETER_TYPES:
            problems.append(f"parameter {param.get('Name')} has type {param.get('Type')!r}")
    try:
        steps = collect_steps(definition)
    except StsmonError as exc:
        return problems + [exc.message]
    for spec in steps.values():
        if spec.type not in SUPPORTED_STEP_TYPES:
            problems.append(
                f"step {spec.name} has type {spec.type!r}, which the local executor does not run "
                f"(supported: {', '.join(SUPPORTED_STEP_TYPES)})"
            )
    return problems
