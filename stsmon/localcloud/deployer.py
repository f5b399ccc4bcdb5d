"""Deploy the stacks of a cloud assembly locally.

Per stack, in two phases (see :mod:`stsmon.localcloud.handlers`):

1. **check** — the plan (:func:`stsmon.localcloud.plan.plan_stack`, pure):
   parameters, rules and conditions are evaluated; every resource's
   properties are resolved as far as they can be before anything is
   created, each resource is classified (create / update / replace / keep /
   delete) against the stack's record, and each handler's ``check`` runs.
   The plan's difference is printed. Any problem stops the stack with
   nothing changed.
2. **apply** — the stack's file assets are published to the local asset
   bucket; resources are created/updated in dependency order with their
   properties resolved for real (an update whose real properties turn out
   unchanged is skipped); removed resources are deleted last. A failing
   create/update rolls back what this deploy did and keeps the old record.

What was deployed is recorded in ``deployments/{stack}.json`` (resolved
properties, physical ids, attributes, outputs, exports, imports) and the
template in ``deployments/templates/{stack}.json``. A redeploy prints the
difference first. Stacks deploy in dependency order; a stack that fails does
not stop the stacks that do not depend on it.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..fileio import write_json_atomic
from ..errors import NotDeployedError, StsmonError
from ..state import StateDir
from . import LocalEnvironment
from .assembly import Assembly, StackArtifact, local_environment, publish_assets
from ..resource_handlers import handler_for
from .handlers import (
    DeployContext,
    DeployedResource,
    DeployError,
    HandlerResult,
    ServingOptions,
)
from .intrinsics import IntrinsicError, ResourceValues, check_functions, condition_value, resolve
from .plan import Change, StackRecord, imports_of, plan_stack


@dataclass
class StackResult:
    stack_name: str
    status: str  # deployed | unchanged | failed | skipped | checked
    changes: list[Change] = field(default_factory=list)
    message: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployReport:
    results: list[StackResult]

    @property
    def ok(self) -> bool:
        return all(r.status in ("deployed", "unchanged", "checked") for r in self.results)


# -- records -------------------------------------------------------------------


def _records_dir(state: StateDir) -> Path:
    return state.deployments


def record_path(state: StateDir, stack_name: str) -> Path:
    return state.deployments / f"{stack_name}.json"


def template_path(state: StateDir, stack_name: str) -> Path:
    return state.deployments / "templates" / f"{stack_name}.json"


def load_record(state: StateDir, stack_name: str) -> StackRecord | None:
    path = record_path(state, stack_name)
    if not path.is_file():
        return None
    try:
        return StackRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise StsmonError(f"{path}: unreadable deployment record ({exc}); remove it and deploy again") from None


def load_records(state: StateDir) -> dict[str, StackRecord]:
    """Every locally deployed stack's record, by stack name."""
    out: dict[str, StackRecord] = {}
    if state.deployments.is_dir():
        for path in sorted(state.deployments.glob("*.json")):
            rec = load_record(state, path.stem)
            if rec is not None:
                out[rec.stack_name] = rec
    return out


def stack_outputs(state: StateDir) -> dict[str, dict[str, Any]]:
    """stack name -> output key -> value, for every locally deployed stack."""
    return {name: dict(rec.outputs) for name, rec in load_records(state).items()}


def find_output(state: StateDir, key: str) -> Any:
    """The value of output ``key`` in whichever deployed stack has it.

    Raises :class:`NotDeployedError` when no deployed stack has it."""
    for outputs in stack_outputs(state).values():
        if key in outputs:
            return outputs[key]
    raise NotDeployedError(
        f"no locally deployed stack has the output {key!r} (state {state.root}): run `stsmon deploy` first"
    )


@contextlib.contextmanager
def deploy_lock(state: StateDir) -> Iterator[None]:
    """One local deploy at a time per state folder."""
    state.deployments.mkdir(parents=True, exist_ok=True)
    with open(state.deployments / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StsmonError(f"another `stsmon deploy` is running on {state.root}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- the deployer ----------------------------------------------------------------


def _static_check(stack: StackArtifact, template: dict[str, Any]) -> None:
    """Types with handlers, known intrinsic functions, no docker assets."""
    resources = template.get("Resources") or {}
    missing = sorted({f"{r.get('Type')} ({lid})" for lid, r in resources.items() if handler_for(r.get("Type", "")) is None})
    if missing:
        raise DeployError(
            f"stack {stack.stack_name}: resource type(s) not supported locally: {', '.join(missing)}"
        )
    for section in ("Resources", "Outputs", "Conditions", "Rules"):
        try:
            check_functions(template.get(section) or {}, section)
        except IntrinsicError as exc:
            raise DeployError(f"stack {stack.stack_name}: {exc.message}") from None
    if stack.docker_images:
        raise DeployError(
            f"stack {stack.stack_name}: Docker image assets are not supported locally ({', '.join(stack.docker_images)})"
        )


class LocalDeployer:
    """Deploys cloud assembly stacks into one state folder.

    ``region`` is used for stacks synthesized without a region. ``echo`` gets
    one line per event (the CLI passes ``click.echo``).
    """

    def __init__(
        self,
        state: StateDir,
        *,
        clock: Clock,
        serving: ServingOptions | None = None,
        echo: Callable[[str], None] = lambda line: None,
        region: str | None = None,
    ) -> None:
        self.state = state
        self.clock = clock  # deploy times, and every handler's (ctx.clock)
        self.serving = serving or ServingOptions()
        self.echo = echo
        self.region = region

    # -- public -------------------------------------------------------------

    def deploy(
        self,
        assembly: Assembly,
        names: list[str] | None = None,
        *,
        exclusively: bool = False,
        dry_run: bool = False,
    ) -> DeployReport:
        """Deploy ``names`` (default: every stack) and, unless ``exclusively``,
        the stacks they depend on, in dependency order."""
        stacks = assembly.ordered(names, with_dependencies=not exclusively)
        templates = {s.artifact_id: s.template() for s in stacks}
        for stack in stacks:  # refuse unknown types/functions before any stack changes
            _static_check(stack, templates[stack.artifact_id])
        results: list[StackResult] = []
        failed: set[str] = set()
        with deploy_lock(self.state):
            for stack in stacks:
                blocked = [d for d in stack.dependencies if d in failed]
                if blocked:
                    names_ = ", ".join(assembly.stacks[d].stack_name for d in blocked)
                    results.append(StackResult(stack.stack_name, "skipped", message=f"depends on {names_}, which failed"))
                    failed.add(stack.artifact_id)
                    self.echo(f"{stack.stack_name}: skipped (depends on {names_}, which failed)")
                    continue
                try:
                    results.append(self._deploy_stack(assembly, stack, templates[stack.artifact_id], dry_run=dry_run))
                except StsmonError as exc:
                    failed.add(stack.artifact_id)
                    results.append(StackResult(stack.stack_name, "failed", message=exc.message))
                    self.echo(f"{stack.stack_name}: FAILED: {exc.message}")
        return DeployReport(results)

    def destroy(self, stack_name: str) -> list[Change]:
        """Delete every resource of a deployed stack (reverse order) and its record.

        Refused while another deployed stack imports one of its exports.
        ``DeletionPolicy: Retain`` resources are left in place."""
        with deploy_lock(self.state):
            record = load_record(self.state, stack_name)
            if record is None:
                raise NotDeployedError(f"stack {stack_name} is not deployed locally")
            self._check_exports_unused(record, {})
            template = self._recorded_template(stack_name)
            ctx = self._context(record.stack_name, record.env, None)
            ctx.deleting_stack = True
            changes = self._delete_resources(ctx, record, list(record.order), template)
            record_path(self.state, stack_name).unlink(missing_ok=True)
            template_path(self.state, stack_name).unlink(missing_ok=True)
            return changes

    # -- one stack ----------------------------------------------------------

    def _context(self, stack_name: str, env: LocalEnvironment, assembly: Assembly | None) -> DeployContext:
        records = load_records(self.state)
        exports: dict[str, Any] = {}
        for rec in records.values():
            exports.update(rec.exports)
        return DeployContext(
            state=self.state,
            env=env,
            stack_name=stack_name,
            clock=self.clock,
            serving=self.serving,
            assembly=assembly,
            outputs={n: dict(r.outputs) for n, r in records.items()},
            exports=exports,
            echo=self.echo,
        )

    def _recorded_template(self, stack_name: str) -> dict[str, Any]:
        path = template_path(self.state, stack_name)
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        return {}

    def _check_exports_unused(self, record: StackRecord, new_exports: dict[str, Any]) -> None:
        for other in load_records(self.state).values():
            if other.stack_name == record.stack_name:
                continue
            for name in other.imports:
                if name in record.exports and name not in new_exports:
                    raise DeployError(
                        f"stack {record.stack_name}: export {name} is imported by stack {other.stack_name}; "
                        f"remove or update {other.stack_name} first"
                    )

    def _deploy_stack(
        self, assembly: Assembly, stack: StackArtifact, template: dict[str, Any], *, dry_run: bool
    ) -> StackResult:
        env = local_environment(stack, self.region)
        name = stack.stack_name
        prior = load_record(self.state, name)
        prior_template = self._recorded_template(name) if prior else {}
        ctx = self._context(name, env, assembly)

        # ---- check phase: the plan, with each handler's check
        plan = plan_stack(
            name, template, env=env, prior=prior, prior_template=prior_template, exports=ctx.exports,
            export_hint=lambda export: _export_hint(export, assembly),
            check=lambda lid, rtype, props: handler_for(rtype).check(ctx, lid, props),
        )
        for line in plan.lines():
            self.echo(line)
        changes = plan.changes
        if dry_run:
            return StackResult(name, "checked", changes)

        # ---- apply phase
        for uri in publish_assets(stack, self.state, env):
            self.echo(f"{name}: published asset {uri}")
        prior_res = prior.resources if prior else {}
        active = plan.resources
        scope = copy.copy(plan.scope)
        done: dict[str, ResourceValues] = {}
        scope.resources = done
        scope.pending = frozenset(active)
        new_resources: dict[str, DeployedResource] = {}
        journal: list[tuple[str, DeployedResource | None, DeployedResource]] = []  # (action, old, new)
        for lid in plan.order:
            res = active[lid]
            rtype = res["Type"]
            handler = handler_for(rtype)
            old = prior_res.get(lid)
            change = plan.change(lid)
            try:
                props = resolve(res.get("Properties") or {}, scope, f"Resources.{lid}.Properties")
                if change.action == "create":
                    self.echo(f"{name}: creating {lid} ({rtype})")
                    result = handler.create(ctx, lid, props)
                    journal.append(("create", None, _deployed(lid, rtype, result, props, res)))
                elif change.action == "replace":
                    self.echo(f"{name}: replacing {lid} ({old.type} -> {rtype})")
                    handler_for(old.type).delete(ctx, lid, old)
                    result = handler.create(ctx, lid, props)
                    journal.append(("replace", old, _deployed(lid, rtype, result, props, res)))
                elif change.action == "update" and props != old.properties:
                    self.echo(f"{name}: updating {lid} ({rtype})")
                    result = handler.update(ctx, lid, props, old)
                    journal.append(("update", old, _deployed(lid, rtype, result, props, res)))
                else:
                    refreshed = handler.refresh(ctx, lid, props, old)
                    result = refreshed or HandlerResult(old.physical_id, old.attributes)
                    if change.action == "update":
                        change.action, change.detail = "keep", "unchanged once resolved"
            except StsmonError as exc:
                self._rollback(ctx, journal)
                raise DeployError(
                    f"stack {name}: resource {lid} ({rtype}): {exc.message} — rolled back; the stack is as before"
                ) from None
            except Exception as exc:
                self._rollback(ctx, journal)
                raise DeployError(
                    f"stack {name}: resource {lid} ({rtype}) failed unexpectedly: {type(exc).__name__}: {exc} — "
                    "rolled back; the stack is as before"
                ) from exc
            new_resources[lid] = _deployed(lid, rtype, result, props, res)
            done[lid] = ResourceValues(result.physical_id, result.attributes)

        outputs: dict[str, Any] = {}
        exports: dict[str, Any] = {}
        for key, out in (template.get("Outputs") or {}).items():
            if "Condition" in out:
                if not condition_value(out["Condition"], scope, f"Outputs.{key}.Condition"):
                    continue
            value = resolve(out.get("Value"), scope, f"Outputs.{key}.Value")
            outputs[key] = value
            if "Export" in out:
                exports[str(resolve(out["Export"]["Name"], scope, f"Outputs.{key}.Export"))] = value
        record = StackRecord(
            stack_name=name,
            artifact_id=stack.artifact_id,
            region=env.region,
            account=env.account,
            deployed_at=self.clock.now().astimezone(UTC).isoformat(timespec="seconds"),
            assembly=str(assembly.root.resolve()),
            parameters=plan.parameters,
            resources=new_resources,
            order=plan.order,
            outputs=outputs,
            exports=exports,
            imports=imports_of(template),
        )
        if prior:
            self._check_exports_unused(prior, exports)
            self._delete_resources(ctx, prior, plan.removed, prior_template)
        write_json_atomic(template_path(self.state, name), template, fsync=True)
        write_json_atomic(record_path(self.state, name), record.to_json(), fsync=True)
        changed = any(c.action != "keep" for c in changes) or (prior is not None and prior.outputs != outputs)
        status = "deployed" if changed or prior is None else "unchanged"
        self.echo(f"{name}: {'deployed' if status == 'deployed' else 'no changes'}")
        return StackResult(name, status, changes, outputs=outputs)

    def _rollback(self, ctx: DeployContext, journal: list[tuple[str, DeployedResource | None, DeployedResource]]) -> None:
        for action, old, new in reversed(journal):
            try:
                if action in ("create", "replace"):
                    handler_for(new.type).delete(ctx, new.logical_id, new)
                    if action == "replace" and old is not None:
                        handler_for(old.type).create(ctx, old.logical_id, old.properties)
                elif action == "update" and old is not None:
                    handler_for(new.type).update(ctx, new.logical_id, old.properties, new)
            except Exception as exc:  # rollback is best effort; say what could not be undone
                self.echo(f"{ctx.stack_name}: WARNING: could not roll back {new.logical_id}: {exc}")

    def _delete_resources(
        self, ctx: DeployContext, record: StackRecord, lids: list[str], template: dict[str, Any]
    ) -> list[Change]:
        changes = []
        resources_t = template.get("Resources") or {}
        for lid in reversed(lids):
            res = record.resources[lid]
            policy = (resources_t.get(lid) or {}).get("DeletionPolicy", "Delete")
            if policy in ("Retain", "RetainExceptOnCreate"):
                self.echo(f"{ctx.stack_name}: retaining {lid} ({res.type}) — DeletionPolicy {policy}")
                changes.append(Change("retain", lid, res.type))
                continue
            handler = handler_for(res.type)
            self.echo(f"{ctx.stack_name}: deleting {lid} ({res.type})")
            try:
                if handler is None:
                    raise StsmonError(f"no local handler for {res.type}")
                handler.delete(ctx, lid, res)
            except StsmonError as exc:
                self.echo(f"{ctx.stack_name}: WARNING: could not delete {lid} ({res.type}): {exc.message}")
            changes.append(Change("delete", lid, res.type))
        return changes


def _deployed(lid: str, rtype: str, result: HandlerResult, props: dict[str, Any], res: dict[str, Any]) -> DeployedResource:
    metadata = {k: v for k, v in (res.get("Metadata") or {}).items() if k == "aws:cdk:path"}
    return DeployedResource(lid, rtype, result.physical_id, props, dict(result.attributes), metadata)


def _export_hint(export: str, assembly: Assembly) -> str:
    stack = export.split(":", 1)[0]
    for s in assembly.stacks.values():
        if s.stack_name == stack:
            return f" (stack {stack} exports it: deploy {stack} first)"
    return ""
