"""What the local target does that has no AWS API: deploying the assembly, tearing down, this machine."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...clock import Clock
from ...state import StateDir

if TYPE_CHECKING:
    from ...clients.serving import ServingOptions
    from ...clients.validation import CallLog
    from stscontracts.config import Config


@dataclass
class LocalRuntime:
    config: Config
    state: StateDir
    clock: Clock
    call_log: CallLog | None = None

    name = "local"
    #: The local flow reuses an assembly whose inputs did not change (synthesized without credentials).
    reuses_assembly = True

    def where(self) -> str:
        return f"locally ({self.state.root})"

    def deploy_hint(self, stacks: str = "") -> str:
        return "run `stsmon deploy` first"

    def show_uri(self, uri: str) -> str:
        """Where a person finds an ``s3://`` object: locally, its file."""
        return str(self.state.s3_path(uri))

    def sagemaker_runtime(self, *, concurrency: int = 10) -> Any:
        from ...clients.validation import ValidatingClient
        from .runtime_client import LocalSageMakerRuntime

        return ValidatingClient(LocalSageMakerRuntime(self.state, self.config.region, concurrency=concurrency),
                                "sagemaker-runtime", log=self.call_log)

    def endpoint_url(self, name: str) -> str | None:
        """The local endpoint's URL (None when it does not run)."""
        from .runtime_client import LocalSageMakerRuntime

        return LocalSageMakerRuntime(self.state, self.config.region).url(name)

    def start_over(self, echo: Callable[[str], None]) -> None:
        """``demo --fresh``: stop this state folder's processes and remove it."""
        from ...cleanup import remove_local_state, stop_local

        if self.state.root.exists():
            echo(f"--fresh: stopping local processes and removing {self.state.root}")
            stop_local(self.state, echo)
            remove_local_state(self.state, echo)

    def next_steps(self) -> str:
        return "`stsmon status` to see what is deployed, `stsmon cleanup` to stop and remove it all."

    # -- the local event bus: what a command caused is printed by it ---------------------------

    def event_marker(self) -> int:
        """Where the local event log ends now (pass it to :meth:`events_since`)."""
        from ..events import log_size

        return log_size(self.state)

    def events_since(self, marker: int) -> list[str]:
        """One line per event put on the local bus since ``marker`` (what happened, which rule targets got it)."""
        from ..events import describe_entry, read_events

        return [describe_entry(entry) for entry in read_events(self.state, marker)]

    # -- what only the local runtime knows (stsmon status) --------------------------------------

    def endpoint_details(self, name: str) -> dict[str, Any]:
        """The local server: the package it serves, its capture counters (written, dropped) and its log."""
        from ...endpoint.process import capture_stats, read_record

        record = read_record(self.state, name)
        if record is None:
            return {}
        details: dict[str, Any] = {"log": record.get("log")}
        package = (record.get("info") or {}).get("ModelPackageArn")
        if package:
            details["package"] = package
        if record.get("capture"):
            details["capture"] = capture_stats(self.state, name)
        return details

    def schedule_details(self, name: str, now: Any) -> dict[str, Any]:
        """The local scheduler's next fire time and last run of the schedule."""
        from ...monitoring import scheduler

        row = next((r for r in scheduler.status(self.state, now)["schedules"] if r["name"] == name), None)
        return {k: row[k] for k in ("next", "last", "last_execution", "last_status")} if row else {}

    def scheduler_running(self) -> bool:
        from ...monitoring import scheduler

        return scheduler.process_info(self.state) is not None

    # -- stsmon cleanup -----------------------------------------------------------------------------

    def cleanup(self, clients: Any, echo: Callable[[str], None], confirm: Callable[[str], None], *, yes: bool,
                keep_state: bool, delete_packages: bool) -> None:
        """Stop running executions (and delete packages, if asked) through the clients, then stop the
        endpoint servers and the scheduler and remove the state folder (unless ``keep_state``)."""
        from ...cleanup import remove_local_state, stop_executions_and_delete_packages, stop_local

        root = self.state.root
        if not root.exists():
            echo(f"Nothing to clean up: {root} does not exist.")
            return
        if not keep_state and not yes:
            confirm(f"Stop local processes and delete {root}?")
        elif delete_packages and not yes:
            confirm(f"Delete every model package in {self.config.model_package_group_name} in {root}?")
        stop_executions_and_delete_packages(clients, echo, delete_packages=delete_packages)
        stop_local(self.state, echo)
        if keep_state:
            echo(f"Kept {root}.")
        else:
            remove_local_state(self.state, echo)

    # -- stsmon deploy ---------------------------------------------------------------------------

    def deploy(self, assembly: Any, stacks: tuple[str, ...], *, exclusively: bool, dry_run: bool,
               serving: ServingOptions | None, echo: Callable[[str], None]) -> None:
        """Deploy the assembly's stacks into the state folder (checked first, differences only); with
        ``serving.stop`` and no stacks, stop every local endpoint server instead."""
        from ...errors import NotDeployedError, StsmonError

        state = self.state
        if serving.stop and not stacks:
            # Stopping needs no assembly: stop every local endpoint server of this state folder.
            from ...endpoint.process import list_records, stop_endpoint

            records = list_records(state)
            if not records:
                raise NotDeployedError(f"no local endpoint in {state.root}: nothing to stop")
            for record in records:
                name = str(record["endpoint_name"])
                echo(f"endpoint {name}: " + ("stopped" if stop_endpoint(state, name) else "was not running"))
            return

        from ..assembly import Assembly
        from ..deployer import LocalDeployer

        deployer = LocalDeployer(state, clock=self.clock, serving=serving, echo=echo, region=self.config.region)
        report = deployer.deploy(Assembly.load(assembly), list(stacks) or None, exclusively=exclusively, dry_run=dry_run)
        echo("")
        for result in report.results:
            line = f"  {result.stack_name:<24} {result.status}"
            if result.message:
                line += f": {result.message}"
            echo(line)
        if not report.ok:
            failed = [r for r in report.results if r.status == "failed"]
            others = "checked" if dry_run else "deployed"
            raise StsmonError(
                f"{len(failed)} stack(s) failed to {'check' if dry_run else 'deploy'} "
                f"({', '.join(r.stack_name for r in failed)}); the other stacks are {others}"
            )
        for result in report.results:
            for key, value in result.outputs.items():
                if not key.startswith("ExportsOutput"):
                    echo(f"  {result.stack_name}.{key} = {value}")

    # -- stsmon doctor ---------------------------------------------------------------------------

    def preflight(self, assembly: Any, echo: Callable[[str], None]) -> list[Any]:
        """This machine: Python, scikit-learn, Node.js, the CDK CLI, free disk, the corpus, the assembly."""
        import os
        import shutil
        import sys
        from importlib.metadata import PackageNotFoundError, version
        from pathlib import Path

        from ... import preflight as p
        from ...data import MSRP_DIR_ENV, cache_dir

        try:
            sklearn = version("scikit-learn")
        except PackageNotFoundError:
            sklearn = None
        root = self.state.root
        where = next((d for d in (root, *root.parents) if d.exists()), Path.cwd())
        return [
            p.check_python(tuple(sys.version_info[:3])),
            p.check_sklearn(sklearn),
            p.check_node(p.node_version()),
            p.check_cdk_cli(Path.cwd()),
            p.check_disk(where, shutil.disk_usage(where).free),
            p.check_corpus(os.environ.get(MSRP_DIR_ENV), cache_dir()),
            p.check_assembly_local(assembly),
        ]
