"""``stsmon deploy``: deploy the cloud assembly locally (or, with --target aws, with the CDK CLI)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import assembly_option, command_clients, context_option, state_dir_option, target_option


@click.command(name="deploy")
@target_option
@state_dir_option
@assembly_option
@context_option
@click.option("--exclusively", is_flag=True, help="Only the named stacks, not the stacks they depend on.")
@click.option("--dry-run", is_flag=True, help="Check and show the differences; change nothing.")
@click.option("--no-capture", is_flag=True, help="Serve without data capture (local endpoint).")
@click.option("--package-arn", default=None, help="Serve this model package instead of the latest approved one "
              "(pinned: later deploys keep it until --unpin).")
@click.option("--unpin", is_flag=True, help="Forget a pinned package: serve the latest Approved one again.")
@click.option("--foreground", is_flag=True, help="Run the local endpoint in this process until Ctrl-C.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Local endpoint address (loopback unless told otherwise).")
@click.option("--port", type=int, default=None, help="Local endpoint port (default: the endpoint's own).")
@click.option("--stop", is_flag=True, help="Stop the local endpoint server (it stays deployed).")
@click.argument("stacks", nargs=-1)
def command(
    target: str,
    state_dir: Path | None,
    assembly: Path,
    context: tuple[str, ...],
    exclusively: bool,
    dry_run: bool,
    no_capture: bool,
    package_arn: str | None,
    unpin: bool,
    foreground: bool,
    host: str,
    port: int | None,
    stop: bool,
    stacks: tuple[str, ...],
) -> None:
    """Deploy STACKS (default: all) of the synthesized assembly, in dependency order.

    Locally (the default) every stack is checked first — resource types,
    intrinsics, handler checks — with nothing changed if anything is wrong;
    a redeploy prints the differences, then applies only them. The serving
    stack needs an approved model package: run `stsmon train` after deploying
    the foundation and training stacks, then deploy again.
    With --target aws this runs `cdk deploy` on the same assembly (the
    serving options, which shape the local endpoint, do not apply there;
    --package-arn synthesizes the app again with -c MODEL_PACKAGE_ARN=...
    into the assembly folder, since on AWS a pin is part of the templates,
    and --unpin synthesizes it again without).
    """
    from ..clients.serving import ServingOptions

    serving = ServingOptions(
        capture=not no_capture, package_arn=package_arn, unpin=unpin, foreground=foreground, host=host, port=port,
        stop=stop,
    )
    if package_arn and unpin:
        from ..errors import UsageError

        raise UsageError("--package-arn pins a package and --unpin forgets the pin: give one of them")
    with command_clients(target, state_dir, context) as clients:
        clients.runtime.deploy(assembly, stacks, exclusively=exclusively, dry_run=dry_run, serving=serving, echo=click.echo)
