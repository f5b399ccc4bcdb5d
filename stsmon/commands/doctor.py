"""``stsmon doctor``: preflight checks, one line each, with what to do."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from ..errors import StsmonError
from .common import assembly_option, context_option, resolve_state_dir, state_dir_option, target_option


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

    if target == "local":
        checks = _local_checks(state_dir, assembly)
    else:
        from ..aws.preflight import run_aws_checks
        from .common import aws_session

        aws = aws_session(context)
        click.echo(f"Checking AWS account and region {aws.region} (profile: {aws.environment.profile or 'default chain'})")
        checks = run_aws_checks(aws.client, aws.config, aws.environment, assembly)
    for line in render(checks):
        click.echo(line)
    bad = failed(checks)
    if bad:
        raise ChecksFailed(f"{len(bad)} check(s) failed: {', '.join(c.name for c in bad)}")


def _local_checks(state_dir: Path | None, assembly: Path) -> list:
    from importlib.metadata import PackageNotFoundError, version

    from .. import preflight as p
    from ..data import MSRP_DIR_ENV, cache_dir

    try:
        sklearn = version("scikit-learn")
    except PackageNotFoundError:
        sklearn = None
    state = resolve_state_dir(state_dir).root
    where = next((d for d in (state, *state.parents) if d.exists()), Path.cwd())
    return [
        p.check_python(tuple(sys.version_info[:3])),
        p.check_sklearn(sklearn),
        p.check_node(p.node_version()),
        p.check_cdk_cli(Path.cwd()),
        p.check_disk(where, shutil.disk_usage(where).free),
        p.check_corpus(os.environ.get(MSRP_DIR_ENV), cache_dir()),
        p.check_assembly_local(assembly),
    ]
