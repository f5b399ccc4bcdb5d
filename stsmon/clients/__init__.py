"""boto3-shaped clients for both targets: the one interface the commands speak.

A command asks :class:`Clients` for ``sagemaker``, ``s3``, ``cloudwatch``,
``scheduler``, ``cloudformation`` (and ``sagemaker_runtime``) and calls them
with boto3's method names, parameters and response shapes. The target only
picks the implementation (:func:`make_clients`):

- ``--target aws``: boto3 clients in the resolved region with the resolved
  profile (``stsmon/aws/environment.py``);
- ``--target local``: the local runtime's implementations of the same
  methods over the state folder (:mod:`stsmon.localcloud.api`), each call
  checked against botocore's service model on the way in and out
  (:mod:`stsmon.clients.validation`).

What has no AWS API (deploying an assembly, tearing down, checking the
machine) is the target's :class:`~stsmon.clients.runtime.TargetRuntime`,
also picked here. Target-specific code lives only in this package's factory,
the local runtime and ``stsmon/aws/``; the commands have one implementation.
"""

from __future__ import annotations

from .factory import Clients, Timing, make_clients

__all__ = ["Clients", "Timing", "make_clients"]
