"""``stsmon doctor``: preflight checks, one line each, with what to do."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import StsmonError
from .common import assembly_option, command_clients, context_option, state_dir_option, target_option


class ChecksFailed(StsmonError):
    """At least one preflight check failed (exit code 1)."""


@click.command(name="doctor")
@target_option
@state_dir_option
@assembly_option
@context_option
def command(target: str, state_dir: Path | None, assembly: Path, context: tuple[str, ...]) -> None:
    """Check that the flow can run, one line per check with what to do.

    --target local: Python, scikit-learn 1.9.*, Node.js, the pinned CDK CLI,
    free disk, the MSRP corpus, the cloud assembly.

    --target aws (read-only calls, nothing created): credentials and account
    (STS), region, cdk.out's account and region, CDK bootstrap version against
    what cdk.out requires, SageMaker quotas for each configured instance type
    and use (processing, training, endpoint; new accounts often have 0), the
    scikit-learn image in the region, Model Monitor when that backend is
    chosen, and whether the bucket names are free or already ours.

    Exits 1 when a check fails; warnings do not fail.
    """
    from ..preflight import failed, render

    with command_clients(target, state_dir, context) as clients:
        checks = clients.runtime.preflight(assembly, click.echo)
    for line in render(checks):
        click.echo(line)
    bad = failed(checks)
    if bad:
        raise ChecksFailed(f"{len(bad)} check(s) failed: {', '.join(c.name for c in bad)}")
