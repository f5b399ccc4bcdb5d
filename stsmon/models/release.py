"""Approve, reject and roll back versions of the model package group.

- :func:`set_status` is SageMaker's ``UpdateModelPackage`` with
  ``ModelApprovalStatus`` and ``ApprovalDescription`` (where SageMaker keeps
  the reviewer's words). Approving a version whose evaluation fails the
  configured quality gate (``QUALITY_METRIC``/``QUALITY_THRESHOLD``), or has
  no value for its metric, is refused unless forced; the refusal names the
  metric, its value and the gate.
- :func:`rollback` serves the newest Approved version older than the served
  one (or the one asked for): it deploys the serving and monitoring stacks
  with that package *pinned* (``ModelPackageArn`` of the approved-package
  custom resource, :mod:`stscontracts.served_package`). The monitoring
  stack's package follows the endpoint, so the monitor's baseline and
  thresholds become the pinned version's. Refused, with nothing changed,
  when the endpoint serves no package or no earlier Approved version exists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import NotDeployedError, StsmonError, UsageError
from . import versions as v

APPROVED = "Approved"
REJECTED = "Rejected"


class GateRefused(UsageError):
    """Approving a version that fails the quality gate without --force."""


def set_status(clients: Any, ref: str, status: str, *, description: str | None = None,
               force: bool = False) -> tuple[v.Version, v.Version]:
    """Set ``ref``'s approval status; ``(before, after)``."""
    found = v.list_versions(clients)
    before = v.find(found, ref)
    if status == APPROVED:
        check = v.gate(clients, before)
        if not check.passes and not force:
            raise GateRefused(f"not approving {before.label}: {check.describe()}. "
                              f"Approve it anyway with --force (and say why in --description).")
    params: dict[str, Any] = {"ModelPackageArn": before.arn, "ModelApprovalStatus": status}
    if description is not None:
        params["ApprovalDescription"] = description
    clients.sagemaker.update_model_package(**params)
    after = v.describe(clients, before.arn, served=before.arn if before.served else "")
    return before, after


def rollback_target(found: list[v.Version], to: str | None = None) -> tuple[v.Version, v.Version]:
    """``(served, target)``: the version to go back to, or a clear refusal."""
    served = next((x for x in found if x.served), None)
    if served is None:
        raise NotDeployedError("the endpoint serves no model package of this group: nothing to roll back "
                               "(deploy the serving stack first: `stsmon deploy`)")
    if to is not None:
        target = v.find(found, to)
        if target.arn == served.arn:
            raise UsageError(f"{target.label} is what the endpoint serves already")
        if target.status != APPROVED:
            raise UsageError(f"{target.label} is {target.status}, not Approved: approve it first "
                             f"(`stsmon model approve {target.number}`) or roll back to an Approved version")
        return served, target
    earlier = [x for x in found if x.status == APPROVED and x.number < served.number]
    if not earlier:
        raise UsageError(f"no Approved version older than {served.label} (the one the endpoint serves) in the "
                         f"group: nothing to roll back to. `stsmon model list` shows the versions; approve one "
                         f"first, or serve another with `stsmon model rollback --to N`.")
    return served, max(earlier, key=lambda x: x.number)


def rollback(clients: Any, assembly: Path, *, to: str | None = None, echo: Callable[[str], None]) -> dict[str, Any]:
    """Serve the previous Approved version, pinned (see the module docstring); what changed."""
    from ..clients.stacks import describe_stack, outputs_of
    from ..clients.serving import ServingOptions

    cfg = clients.config
    served, target = rollback_target(v.list_versions(clients, with_metrics=False), to)
    # The serving stack, and the monitoring stack when it is deployed (its package follows the endpoint).
    stacks = tuple(name for name in (cfg.stack_name("serving"), cfg.stack_name("monitoring"))
                   if describe_stack(clients, name) is not None)
    echo(f"Rolling back {cfg.endpoint_name}: {served.label} -> {target.label} ({target.arn}, pinned); "
         f"deploying {', '.join(stacks)}")
    clients.runtime.deploy(assembly, stacks, exclusively=True, dry_run=False,
                           serving=ServingOptions(package_arn=target.arn), echo=echo)
    now = v.served_arn(clients)
    if now.lower() != target.arn.lower():
        raise StsmonError(f"the rollback deployed, but {cfg.endpoint_name} serves {now or 'no package'}, "
                          f"not {target.arn}")
    monitoring = describe_stack(clients, cfg.stack_name("monitoring"))
    return {"from": served.arn, "to": target.arn, "from_version": served.number, "to_version": target.number,
            "baseline_uri": outputs_of(monitoring).get("BaselineUri", "") if monitoring else ""}
