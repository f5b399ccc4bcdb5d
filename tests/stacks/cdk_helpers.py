"""Synthesizing the app in-process and reading its templates (shared by tests/stacks)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synth:
    """A synthesized app: the config, the stacks, the templates (dicts) and the output folder."""

    config: Any
    stacks: Any
    outdir: Path
    templates: dict[str, dict]

    def template(self, kind: str) -> dict:
        return self.templates[self.config.stack_name(kind)]

    def assertions(self, kind: str):
        from aws_cdk.assertions import Template

        return Template.from_json(self.template(kind))

    def resources(self, kind: str, type_: str) -> dict[str, dict]:
        return {lid: r for lid, r in self.template(kind)["Resources"].items() if r["Type"] == type_}

    def one(self, kind: str, type_: str) -> dict:
        found = self.resources(kind, type_)
        assert len(found) == 1, f"expected one {type_} in {kind}, found {sorted(found)}"
        return next(iter(found.values()))


def synthesize(outdir: Path, overrides: dict[str, str] | None = None, *, nag: bool = True) -> Synth:
    """Synthesize the app like app.py does (same cdk.json context, same nag packs)."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

    from stacks import add_stacks
    from stscontracts.config import load_config, read_cdk_json_context

    context = read_cdk_json_context(REPO_ROOT / "cdk.json")
    config = load_config(overrides or {}, {}, None, cdk_json_context=context)
    # What the CDK CLI adds to the context (path and asset metadata, as in cdk.out).
    cli_context = {**context, "aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}
    app = cdk.App(outdir=str(outdir), context=cli_context, builtin_cloud_formation_validation=False)
    # In-process definition build: runs under this process's network guard
    # (the background build is exercised by the real `cdk synth` test).
    stacks = add_stacks(app, config, background=False)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    app.synth()
    templates = {
        stack.stack_name: json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
        for stack in stacks.all()
    }
    return Synth(config, stacks, outdir, templates)


def render(value: Any) -> Any:
    """Replace CloudFormation intrinsics by readable markers (``<lid.Attr>``,
    ``<Ref lid>``, ``<Import name>``) and join ``Fn::Join``s, so a JSON
    string built by ``Stack.to_json_string`` can be parsed."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return f"<Ref {arg}>"
            if key == "Fn::GetAtt":
                return f"<{arg[0]}.{arg[1]}>"
            if key == "Fn::ImportValue":
                return f"<Import {arg}>"
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(render(p)) for p in parts)
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    return value


def pipeline_definition(resource: dict) -> dict:
    """The parsed definition of an ``AWS::SageMaker::Pipeline`` resource."""
    body = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    return json.loads(render(body))


def policy_statements(template: dict, role_logical_id: str) -> list[dict]:
    """Every statement of the managed and inline policies attached to a role."""
    statements = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        roles = props.get("Roles", [])
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and {"Ref": role_logical_id} in roles:
            statements += props["PolicyDocument"]["Statement"]
    return statements


def logical_id(template: dict, type_: str, path_part: str) -> str:
    """The logical id of the one resource of ``type_`` whose construct path contains ``path_part``."""
    found = [
        lid for lid, r in template["Resources"].items()
        if r["Type"] == type_ and path_part in r.get("Metadata", {}).get("aws:cdk:path", "")
    ]
    assert len(found) == 1, f"{type_} with path containing {path_part!r}: {found}"
    return found[0]
