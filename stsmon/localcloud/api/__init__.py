"""The local runtime behind boto3's interface: one class per service, over the state folder.

Each implements the boto3 methods the commands use, keyword for keyword and
shape for shape (:mod:`stsmon.clients` wraps them in botocore-model
validation): :class:`~.sagemaker.LocalSageMaker`, :class:`~.s3.LocalS3`,
:class:`~.cloudwatch.LocalCloudWatch`, :class:`~.scheduler.LocalScheduler`,
:class:`~.cloudformation.LocalCloudFormation`; and :class:`~.runtime.LocalRuntime`
for what has no AWS API (the local deploy, teardown, this machine's checks).
A method a command needs and the local runtime lacks fails loudly
(``NotImplementedError`` naming it), never differently.
"""

from __future__ import annotations

from typing import Any

from ...clock import Clock
from ...state import StateDir
from .runtime import LocalRuntime


def local_client(service: str, *, state: StateDir, clock: Clock, region: str) -> Any:
    """The local implementation of ``service`` (unvalidated; :func:`stsmon.clients.make_clients` wraps it)."""
    if service == "sagemaker":
        from .sagemaker import LocalSageMaker

        return LocalSageMaker(state, clock, region)
    if service == "s3":
        from .s3 import LocalS3

        return LocalS3(state)
    if service == "cloudwatch":
        from .cloudwatch import LocalCloudWatch

        return LocalCloudWatch(state, clock)
    if service == "scheduler":
        from .scheduler import LocalScheduler

        return LocalScheduler(state)
    if service == "cloudformation":
        from .cloudformation import LocalCloudFormation

        return LocalCloudFormation(state)
    raise ValueError(f"the local runtime has no {service} client")


__all__ = ["LocalRuntime", "local_client"]
