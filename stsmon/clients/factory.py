"""The client factory: the one place that knows which target a command acts on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..state import StateDir
from .validation import CallLog

if TYPE_CHECKING:
    from ..aws.environment import AwsEnvironment
    from stscontracts.config import Config

SERVICES = ("sagemaker", "s3", "cloudwatch", "scheduler", "cloudformation")


@dataclass(frozen=True)
class Timing:
    """How often wait loops ask, and how long they wait (seconds).

    On AWS a pipeline step takes minutes and SageMaker delivers capture files
    to S3 in batches (typically within minutes); locally both take a second.
    """

    execution_poll: float
    capture_poll: float
    capture_timeout: float
    execution_timeout: float = 6 * 3600.0


AWS_TIMING = Timing(execution_poll=15.0, capture_poll=20.0, capture_timeout=900.0)
LOCAL_TIMING = Timing(execution_poll=0.25, capture_poll=0.25, capture_timeout=20.0)


@dataclass
class Clients:
    """The clients of one target, built on first use and shared by a command's steps.

    ``target`` ("local" or "aws") is for records and messages only: nothing
    branches on it outside the factory. ``state`` is the local state folder
    (run records for either target; the local runtime's state). Use as a
    context manager: leaving it (normally or on Ctrl-C) closes the clients,
    which for the local runtime stops what this process started and has not
    finished (a pipeline execution records Stopped, as documented).
    """

    target: str
    config: Config
    state: StateDir
    clock: Clock
    timing: Timing
    region: str
    runtime: Any
    _build: Callable[[str], Any]
    call_log: CallLog | None = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._build(service)
            return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @property
    def scheduler(self) -> Any:
        return self.client("scheduler")

    @property
    def cloudformation(self) -> Any:
        return self.client("cloudformation")

    def sagemaker_runtime(self, *, concurrency: int = 10) -> Any:
        """A ``sagemaker-runtime`` client for ``concurrency`` requests in flight."""
        return self.runtime.sagemaker_runtime(concurrency=concurrency)

    def deploy_hint(self, stacks: str = "") -> str:
        """What a person runs to deploy ``stacks`` on this target (for error messages)."""
        return self.runtime.deploy_hint(stacks)

    def close(self, *, interrupted: bool = False) -> None:
        for client in list(self._clients.values()):
            inner = getattr(client, "inner", client)
            closer = getattr(inner, "close_clients", None)
            if closer is not None:
                closer(interrupted=interrupted)

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(interrupted=exc_type is not None and issubclass(exc_type, KeyboardInterrupt))


def make_clients(
    target: str,
    *,
    config: Config,
    state: StateDir,
    clock: Clock,
    environment: AwsEnvironment | None = None,
    call_log: CallLog | None = None,
) -> Clients:
    """The clients of ``target`` ("local" or "aws").

    ``aws``: boto3 clients in ``config.region`` with ``environment``'s profile.
    ``local``: the local runtime over ``state``, every call validated against
    botocore's model (and recorded in ``call_log`` when given).
    """
    if target == "aws":
        from ..aws import client as aws_client
        from ..aws.runtime import AwsRuntime

        profile = environment.boto3_profile if environment is not None else None
        runtime = AwsRuntime(config=config, state=state, clock=clock, environment=environment)
        return Clients("aws", config, state, clock, AWS_TIMING, config.region, runtime,
                       lambda service: aws_client(service, config.region, profile=profile), call_log)
    if target == "local":
        from ..localcloud.api import LocalRuntime, local_client
        from .validation import ValidatingClient

        runtime = LocalRuntime(config=config, state=state, clock=clock, call_log=call_log)

        def build(service: str) -> Any:
            return ValidatingClient(local_client(service, state=state, clock=clock, region=config.region),
                                    service, log=call_log)

        return Clients("local", config, state, clock, LOCAL_TIMING, config.region, runtime, build, call_log)
    raise ValueError(f"unknown target {target!r} (local or aws)")
