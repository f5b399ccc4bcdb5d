"""The plan of a local stack deploy: the template against the recorded state. Pure.

:func:`plan_stack` takes a stack's template, its deployment record (None
for a new stack), the exports of the other deployed stacks and the local
environment, and works out — without touching anything — what a deploy
would do:

- the parameters (defaults; the CDK's bootstrap-version SSM parameter reads
  as a modern bootstrap), the ``Rules``, which resources exist (their
  ``Condition``), their dependency order (``Ref``/``GetAtt``/``Sub``
  references and ``DependsOn``; a cycle is an error);
- each resource's properties resolved as far as they can be before anything
  is created (values that exist only after another resource's create are
  :class:`~stsmon.localcloud.handlers.Unresolved`), and its action:
  ``create`` (new), ``replace`` (its type changed), ``keep`` (resolved and
  equal to the record), ``update`` (anything else: the detail names the
  properties that differ or may), then ``delete`` for recorded resources the
  template no longer has, in record order;
- the outputs that changed.

An optional ``check(logical_id, type, properties)`` callable sees each
resource's properties in dependency order (the deployer passes the
handlers' checks); anything it raises stops the plan, naming the stack and
resource. :meth:`StackPlan.lines` is the difference as ``stsmon deploy``
prints it. :class:`StackRecord` is the recorded state,
``deployments/{stack}.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import StsmonError
from . import LocalEnvironment
from .handlers import DeployedResource, DeployError, is_resolved
from .intrinsics import IntrinsicError, ResourceValues, Scope, condition_value, evaluate_rules, find_references, resolve

#: What ``BootstrapVersion`` (the CDK's SSM parameter) reads locally: a modern bootstrap.
LOCAL_BOOTSTRAP_VERSION = "30"
RECORD_VERSION = 1
_MARKS = {"create": "[+]", "update": "[~]", "replace": "[-/+]", "delete": "[-]"}


@dataclass
class StackRecord:
    """``deployments/{stack}.json``: what a deploy left (resolved properties, physical ids,
    attributes, outputs, exports, the exports it imports)."""

    stack_name: str
    artifact_id: str
    region: str
    account: str
    deployed_at: str
    assembly: str
    parameters: dict[str, Any]
    resources: dict[str, DeployedResource]
    order: list[str]
    outputs: dict[str, Any]
    exports: dict[str, Any]
    imports: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "RecordVersion": RECORD_VERSION,
            "StackName": self.stack_name,
            "ArtifactId": self.artifact_id,
            "Region": self.region,
            "Account": self.account,
            "DeployedAt": self.deployed_at,
            "Assembly": self.assembly,
            "Parameters": self.parameters,
            "Resources": {lid: self.resources[lid].to_json() for lid in self.order},
            "Outputs": self.outputs,
            "Exports": self.exports,
            "Imports": self.imports,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackRecord:
        resources = {lid: DeployedResource.from_json(lid, r) for lid, r in data["Resources"].items()}
        return cls(
            stack_name=data["StackName"],
            artifact_id=data.get("ArtifactId", data["StackName"]),
            region=data["Region"],
            account=data["Account"],
            deployed_at=data["DeployedAt"],
            assembly=data.get("Assembly", ""),
            parameters=data.get("Parameters", {}),
            resources=resources,
            order=list(data["Resources"]),
            outputs=data.get("Outputs", {}),
            exports=data.get("Exports", {}),
            imports=data.get("Imports", []),
        )

    @property
    def env(self) -> LocalEnvironment:
        return LocalEnvironment(account=self.account, region=self.region)


@dataclass
class Change:
    action: str  # create | update | replace | keep | delete (and retain, when a delete keeps it)
    logical_id: str
    type: str
    detail: str = ""


@dataclass
class StackPlan:
    """What deploying one stack would do (see the module's docstring).

    ``scope``: the intrinsics' scope before any resource is known (parameters,
    exports, mappings, conditions), for the apply phase to resolve with.
    ``resources``: the template's resources that exist (their conditions
    hold), by logical id; ``order``: those in dependency order. ``changes``:
    one per resource in ``order``, then the deletes of ``removed``.
    ``properties``: each resource's properties resolved as far as the plan
    could. ``output_changes``: (mark, key) of outputs added ``[+]``, removed
    ``[-]`` or changed ``[~]`` against the recorded template.
    """

    stack_name: str
    deployed: bool
    parameters: dict[str, Any]
    scope: Scope
    resources: dict[str, Any]
    order: list[str]
    changes: list[Change]
    removed: list[str]
    properties: dict[str, Any] = field(default_factory=dict)
    output_changes: list[tuple[str, str]] = field(default_factory=list)

    def change(self, logical_id: str) -> Change:
        for c in self.changes:
            if c.logical_id == logical_id and c.action != "delete":
                return c
        raise KeyError(logical_id)

    def lines(self) -> list[str]:
        """The difference as ``stsmon deploy`` prints it before deploying."""
        shown = [c for c in self.changes if c.action != "keep"]
        if not self.deployed:
            lines = [f"{self.stack_name}: new stack, {len(shown)} resource(s) to create"]
        elif not shown and not self.output_changes:
            return [f"{self.stack_name}: no differences against the local deployment"]
        else:
            lines = [f"{self.stack_name}: differences against the local deployment:"]
        for c in shown:
            detail = f" ({c.detail})" if c.detail else ""
            lines.append(f"  {_MARKS[c.action]} {c.type} {c.logical_id}{detail}")
        if self.deployed:
            lines.extend(f"  {mark} Output {key}" for mark, key in self.output_changes)
        return lines


def plan_stack(
    stack_name: str,
    template: Mapping[str, Any],
    *,
    env: LocalEnvironment,
    prior: StackRecord | None = None,
    prior_template: Mapping[str, Any] | None = None,
    exports: Mapping[str, Any] | None = None,
    export_hint: Callable[[str], str] = lambda export: "",
    check: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> StackPlan:
    """Plan deploying ``template`` as ``stack_name`` over ``prior`` (see the module's docstring).

    Raises :class:`DeployError` naming the stack (and resource) when the
    stack cannot be deployed: a region change, a parameter without a local
    value, a failing rule, an unresolvable intrinsic, a dependency cycle, or
    what ``check`` raised.
    """
    if prior and prior.region != env.region:
        raise DeployError(f"stack {stack_name} is deployed in {prior.region}; it cannot move to {env.region} (destroy it first)")
    resources_t: dict[str, Any] = template.get("Resources") or {}
    params = template_parameters(stack_name, template)
    base_scope = Scope(
        env=env,
        stack_name=stack_name,
        parameters=params,
        exports=dict(exports or {}),
        mappings=template.get("Mappings") or {},
        condition_defs=template.get("Conditions") or {},
        export_hint=export_hint,
    )
    try:
        evaluate_rules(template.get("Rules") or {}, base_scope)
    except IntrinsicError as exc:
        raise DeployError(f"stack {stack_name}: {exc.message}") from None

    # Resources whose Condition is false do not exist.
    active: dict[str, Any] = {}
    for lid, res in resources_t.items():
        cond = res.get("Condition")
        if cond is not None:
            try:
                enabled = condition_value(cond, base_scope, f"Resources.{lid}.Condition")
            except IntrinsicError as exc:
                raise DeployError(f"stack {stack_name}: {exc.message}") from None
            if not enabled:
                continue
        active[lid] = res
    order = topo_order(active)

    prior_res = prior.resources if prior else {}
    known: dict[str, ResourceValues] = {}
    planned: dict[str, Change] = {}
    check_scope = copy.copy(base_scope)
    check_scope.allow_unresolved = True
    check_scope.resources = known
    check_scope.pending = frozenset(active)
    checked_props: dict[str, Any] = {}
    for lid in order:
        res = active[lid]
        rtype = res["Type"]
        where = f"Resources.{lid}.Properties"
        try:
            props = resolve(res.get("Properties") or {}, check_scope, where)
        except IntrinsicError as exc:
            raise DeployError(f"stack {stack_name}: resource {lid} ({rtype}): {exc.message}") from None
        checked_props[lid] = props
        old = prior_res.get(lid)
        if old is None:
            planned[lid] = Change("create", lid, rtype)
        elif old.type != rtype:
            planned[lid] = Change("replace", lid, rtype, f"type {old.type} -> {rtype}")
        elif is_resolved(props) and props == old.properties:
            planned[lid] = Change("keep", lid, rtype)
            known[lid] = ResourceValues(old.physical_id, old.attributes)
        else:
            planned[lid] = Change("update", lid, rtype, describe_change(old.properties, props))
        check_scope.pending = frozenset(active) - set(known)
        if check is not None:
            try:
                check(lid, rtype, props)
            except StsmonError as exc:
                raise DeployError(f"stack {stack_name}: resource {lid} ({rtype}): {exc.message}") from None
    try:
        resolve(template.get("Outputs") or {}, check_scope, "Outputs")
    except IntrinsicError as exc:
        raise DeployError(f"stack {stack_name}: {exc.message}") from None
    removed = [lid for lid in (prior.order if prior else []) if lid not in active]
    changes = [planned[lid] for lid in order] + [Change("delete", lid, prior_res[lid].type) for lid in removed]
    old_out, new_out = (prior_template or {}).get("Outputs") or {}, template.get("Outputs") or {}
    output_changes = [
        ("[+]" if key not in old_out else "[-]" if key not in new_out else "[~]", key)
        for key in sorted(k for k in set(old_out) | set(new_out) if old_out.get(k) != new_out.get(k))
    ]
    return StackPlan(
        stack_name=stack_name,
        deployed=prior is not None,
        parameters=params,
        scope=base_scope,
        resources=active,
        order=order,
        changes=changes,
        removed=removed,
        properties=checked_props,
        output_changes=output_changes,
    )


def template_parameters(stack_name: str, template: Mapping[str, Any]) -> dict[str, Any]:
    """The template's parameter values locally: each default (lists split), the CDK's
    bootstrap version as a modern bootstrap; a parameter with no local value is an error."""
    params: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        ptype = spec.get("Type", "String")
        if ptype.startswith("AWS::SSM::Parameter::Value"):
            if str(spec.get("Default", "")).startswith("/cdk-bootstrap/"):
                params[name] = LOCAL_BOOTSTRAP_VERSION
                continue
            raise DeployError(
                f"stack {stack_name}: parameter {name} reads SSM parameter {spec.get('Default')!r}, "
                "which has no local value"
            )
        if "Default" not in spec:
            raise DeployError(f"stack {stack_name}: parameter {name} has no default (local deploys take none)")
        value = spec["Default"]
        if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
            value = [v.strip() for v in str(value).split(",")]
        params[name] = value
    return params


def topo_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids in dependency order (each after what it references or depends on)."""
    deps: dict[str, set[str]] = {}
    for lid, res in resources.items():
        refs = find_references({k: v for k, v in res.items() if k in ("Properties", "Condition")})
        depends_on = res.get("DependsOn") or []
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        deps[lid] = {r for r in refs | set(depends_on) if r in resources and r != lid}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(lid: str, path: list[str]) -> None:
        if state.get(lid) == 2:
            return
        if state.get(lid) == 1:
            raise DeployError(f"circular dependency between resources: {' -> '.join(path + [lid])}")
        state[lid] = 1
        for dep in sorted(deps[lid]):
            visit(dep, path + [lid])
        state[lid] = 2
        order.append(lid)

    for lid in resources:
        visit(lid, [])
    return order


def imports_of(template: Mapping[str, Any]) -> list[str]:
    """The export names the template imports (``Fn::ImportValue`` of a literal name)."""
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if len(v) == 1 and "Fn::ImportValue" in v and isinstance(v["Fn::ImportValue"], str):
                found.add(v["Fn::ImportValue"])
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(template.get("Resources") or {})
    walk(template.get("Outputs") or {})
    return sorted(found)


def describe_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The properties that differ; those not resolved yet under ``may change:``."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    pending = sorted(k for k in keys if not is_resolved(new.get(k)))
    parts = [k for k in keys if k not in pending]
    text = ", ".join(parts)
    if pending:
        text += (", " if text else "") + "may change: " + ", ".join(pending)
    return text
