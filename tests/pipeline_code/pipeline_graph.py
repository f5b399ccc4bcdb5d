"""Reading SageMaker pipeline definitions in tests: steps, edges, references."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.(.+)$")


def all_steps(definition: dict) -> dict[str, dict]:
    """Every step by name, including those nested in condition branches."""
    found: dict[str, dict] = {}

    def visit(steps: list[dict]) -> None:
        for step in steps:
            assert step["Name"] not in found, f"duplicate step name {step['Name']}"
            found[step["Name"]] = step
            if step["Type"] == "Condition":
                visit(step["Arguments"].get("IfSteps", []))
                visit(step["Arguments"].get("ElseSteps", []))

    visit(definition["Steps"])
    return found


def gets(value: Any) -> Iterator[str]:
    """Every ``{"Get": ...}`` path inside a JSON value."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            yield value["Get"]
        for item in value.values():
            yield from gets(item)
    elif isinstance(value, list):
        for item in value:
            yield from gets(item)


def step_references(step: dict) -> list[tuple[str, str]]:
    """(step name, property path) of every ``Steps.X...`` reference in a step,
    not counting the steps nested in its branches."""
    own = {k: v for k, v in step.items() if k != "Arguments"}
    arguments = {k: v for k, v in step.get("Arguments", {}).items() if k not in ("IfSteps", "ElseSteps")}
    refs = []
    for path in gets([own, arguments]):
        match = STEP_REF.match(path)
        if match:
            refs.append((match.group(1), match.group(2)))
    return refs


def edges(definition: dict) -> set[tuple[str, str]]:
    """(upstream, downstream) pairs from property references, DependsOn and
    condition branches."""
    result = set()
    for name, step in all_steps(definition).items():
        for upstream, _ in step_references(step):
            result.add((upstream, name))
        for upstream in step.get("DependsOn", []):
            result.add((upstream, name))
        if step["Type"] == "Condition":
            for child in step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []):
                result.add((name, child["Name"]))
    return result


def output_names(step: dict) -> set[str]:
    config = step["Arguments"].get("ProcessingOutputConfig", {})
    return {o["OutputName"] for o in config.get("Outputs", [])}


def property_files(step: dict) -> set[str]:
    return {p["PropertyFileName"] for p in step.get("PropertyFiles", [])}


def check_reference(steps: dict[str, dict], name: str, path: str) -> str | None:
    """Why a ``Steps.{name}.{path}`` reference is invalid, or None if it is valid."""
    if name not in steps:
        return f"unknown step {name}"
    step = steps[name]
    match = re.fullmatch(r"ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri", path)
    if match:
        if step["Type"] != "Processing":
            return f"{name} is not a processing step"
        return None if match.group(1) in output_names(step) else f"{name} has no output {match.group(1)!r}"
    if path == "ModelArtifacts.S3ModelArtifacts":
        return None if step["Type"] == "Training" else f"{name} is not a training step"
    match = re.fullmatch(r"PropertyFiles\.(.+)", path)
    if match:
        return None if match.group(1) in property_files(step) else f"{name} has no property file {match.group(1)}"
    return f"unexpected property path {path}"


def all_references(value: Any) -> Iterator[tuple[str, str]]:
    for path in gets(value):
        match = STEP_REF.match(path)
        if match:
            yield match.group(1), match.group(2)
