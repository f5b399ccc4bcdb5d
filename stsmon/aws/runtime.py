"""What ``--target aws`` does that is not a boto3 call: ``cdk deploy``, the account's checks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..state import StateDir

if TYPE_CHECKING:
    from stscontracts.config import Config

    from ..clients.serving import ServingOptions
    from .environment import AwsEnvironment


def aws_deploy_argv(project: Path, assembly: Path, stacks: tuple[str, ...], exclusively: bool,
                    cdk_args: list[str] | tuple[str, ...] = (), *, pinned_package: str | None = None,
                    unpin: bool = False) -> list[str]:
    """``cdk deploy`` of the synthesized assembly (no synth): the stacks named, else ``--all``.

    With ``pinned_package`` the app is synthesized again into ``assembly`` with
    ``-c MODEL_PACKAGE_ARN=<it>`` (a pin is part of the templates: the
    approved-package custom resource's ``ModelPackageArn``), then deployed; the
    assembly keeps the pin for later deploys. ``unpin`` synthesizes it again
    without one.
    """
    from ..commands.synth import cdk_command

    if pinned_package:
        source = ["--output", str(assembly), "-c", f"MODEL_PACKAGE_ARN={pinned_package}"]
    elif unpin:  # synthesize again with the configuration's MODEL_PACKAGE_ARN (none, unless you set one)
        source = ["--output", str(assembly)]
    else:
        source = ["--app", str(assembly)]
    argv = [*cdk_command(project), "deploy", *cdk_args, *source, "--no-notices",
            "--require-approval", "broadening"]
    if exclusively:
        argv.append("--exclusively")
    return argv + (list(stacks) if stacks else ["--all"])


def aws_diff_argv(project: Path, assembly: Path, stacks: tuple[str, ...], exclusively: bool,
                  cdk_args: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``cdk diff`` of the synthesized assembly against what is deployed (no stacks named: all of them)."""
    from ..commands.synth import cdk_command

    argv = [*cdk_command(project), "diff", *cdk_args, "--app", str(assembly), "--no-notices"]
    if exclusively:
        argv.append("--exclusively")
    return argv + list(stacks)


def caller_account(client: Callable[[str], Any]) -> str:
    """The account of the AWS credentials (STS GetCallerIdentity); no credentials is a clear error."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..errors import StsmonError

    try:
        return client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise StsmonError(f"no usable AWS credentials ({exc}): configure them (aws configure / aws sso login), "
                          "or run `stsmon doctor --target aws`") from None


@dataclass
class AwsRuntime:
    config: Config
    state: StateDir
    clock: Clock
    environment: AwsEnvironment | None = None

    name = "aws"
    #: Synthesized again every time: with your credentials the CDK CLI writes your account into the assembly.
    reuses_assembly = False

    def where(self) -> str:
        return f"on AWS ({self.config.region})"

    def deploy_hint(self, stacks: str = "") -> str:
        return f"run `npx cdk deploy {stacks or '--all'}`"

    def show_uri(self, uri: str) -> str:
        return uri

    def sagemaker_runtime(self, *, concurrency: int = 10) -> Any:
        """boto3's ``sagemaker-runtime`` client with your credentials, sized for ``concurrency`` requests."""
        import boto3
        from botocore.config import Config

        config = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=max(10, concurrency),
                        read_timeout=70, connect_timeout=10)
        profile = self.environment.boto3_profile if self.environment is not None else None
        session = boto3.Session(profile_name=profile) if profile else boto3
        return session.client("sagemaker-runtime", region_name=self.config.region, config=config)

    def endpoint_url(self, name: str) -> str:
        """The endpoint's runtime API URL (what boto3 calls)."""
        return f"https://runtime.sagemaker.{self.config.region}.amazonaws.com/endpoints/{name}/invocations"

    def start_over(self, echo: Callable[[str], None]) -> None:
        """``demo --fresh``: forget the local records of earlier runs (the AWS resources stay: cdk destroy)."""
        from ..cleanup import remove_local_state

        if self.state.root.exists():
            echo(f"--fresh: removing the local records in {self.state.root}")
            remove_local_state(self.state, echo)

    def next_steps(self) -> str:
        return "`stsmon status --target aws`; remove it all (it costs money) with `npx cdk destroy --all`."

    # -- events: on AWS EventBridge delivers them (the alarm topic); nothing to print here --------

    def event_marker(self) -> int:
        return 0

    def events_since(self, marker: int) -> list[str]:
        return []

    # -- what only the local runtime knows: nothing more on AWS ----------------------------------

    def endpoint_details(self, name: str) -> dict[str, Any]:
        return {}

    def schedule_details(self, name: str, now: Any) -> dict[str, Any]:
        return {}

    def scheduler_running(self) -> bool | None:
        return None  # EventBridge Scheduler is a service, not a process

    # -- stsmon cleanup -----------------------------------------------------------------------------

    def cleanup(self, clients: Any, echo: Callable[[str], None], confirm: Callable[[str], None], *, yes: bool,
                keep_state: bool, delete_packages: bool) -> None:
        """Stop running executions and, if asked, delete the packages; the stacks go with `cdk destroy`."""
        from ..cleanup import stop_executions_and_delete_packages

        cfg = self.config
        if delete_packages and not yes:
            confirm(f"Delete every model package in {cfg.model_package_group_name} ({cfg.region})?")
        done = stop_executions_and_delete_packages(clients, echo, delete_packages=delete_packages)
        echo(f"Stopped {len(done['executions'])} execution(s), deleted {len(done['packages'])} package(s).")
        echo("Now remove the stacks: npx cdk destroy --all"
             + ("" if cfg.is_prod else " (dev profile: also empties the bucket and removes the packages)"))

    def client(self, service: str) -> Any:
        """A boto3 client for what the command clients do not cover (STS, the account checks)."""
        from . import client

        return client(service, self.config.region, profile=self.environment.boto3_profile if self.environment else None)

    # -- stsmon deploy ---------------------------------------------------------------------------

    def deploy(self, assembly: Path, stacks: tuple[str, ...], *, exclusively: bool, dry_run: bool,
               serving: ServingOptions | None, echo: Callable[[str], None]) -> None:
        """`cdk deploy` of the same assembly, once it is known to be for this account and region."""
        from ..errors import StsmonError
        from .environment import assembly_mismatch

        problem = assembly_mismatch(assembly, region=self.config.region, account=caller_account(self.client))
        if problem:
            raise StsmonError(f"not deploying: {problem}")
        cdk_args = self.environment.cdk_args() if self.environment is not None else []
        pinned = serving.package_arn if serving is not None else None
        if dry_run:
            argv = aws_diff_argv(Path.cwd(), assembly, stacks, exclusively, cdk_args)
        else:
            argv = aws_deploy_argv(Path.cwd(), assembly, stacks, exclusively, cdk_args, pinned_package=pinned,
                                   unpin=serving is not None and serving.unpin)
        result = subprocess.run(argv, env={**os.environ})
        if result.returncode:
            raise StsmonError(f"cdk {'diff' if dry_run else 'deploy'} failed (exit code {result.returncode})")

    # -- stsmon doctor ---------------------------------------------------------------------------

    def preflight(self, assembly: Path, echo: Callable[[str], None]) -> list[Any]:
        """The account (read-only calls): credentials, region, bootstrap, quotas, image, buckets."""
        from .preflight import run_aws_checks

        profile = self.environment.profile if self.environment is not None else None
        echo(f"Checking AWS account and region {self.config.region} (profile: {profile or 'default chain'})")
        return run_aws_checks(self.client, self.config, self.environment, assembly)
