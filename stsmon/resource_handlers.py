"""Every local resource handler, in one explicit table.

What each CloudFormation resource type means locally is implemented by the
handler modules below; this module imports each of them by name (a module
that is missing or fails to import is an error here, at import, never a
silent skip) and is where the deployer asks :func:`handler_for`. The
interface they implement is :mod:`stsmon.localcloud.handlers`, which imports
none of them, so there is no cycle between the interface and its
implementations.

========================================  ==================================================
module                                    resource types
========================================  ==================================================
``stsmon.localcloud.handlers.core``       S3, KMS, IAM, Logs, SNS, Lambda, CDK's custom resources
``stsmon.localcloud.handlers.sagemaker``  model package group, pipeline, the pipeline cleanup
``stsmon.localcloud.handlers.events``     Events::Rule (the local event bus)
``stsmon.endpoint.handlers``              Model, EndpointConfig, Endpoint, the approved-package lookup
``stsmon.monitoring.handlers``            Scheduler::Schedule, CloudWatch::Alarm, CloudWatch::Dashboard
========================================  ==================================================
"""

from __future__ import annotations

from types import ModuleType

from .endpoint import handlers as endpoint_handlers
from .localcloud import handlers as interface
from .localcloud.handlers import ResourceHandler, core, events, sagemaker
from .monitoring import handlers as monitoring_handlers

#: The modules that provide handlers, in the order they register.
HANDLER_MODULES: tuple[ModuleType, ...] = (core, sagemaker, events, endpoint_handlers, monitoring_handlers)


def types_of(module: ModuleType) -> list[str]:
    """The resource types whose handler ``module`` defines."""
    return sorted(t for t, handler in interface._HANDLERS.items() if type(handler).__module__ == module.__name__)


def handler_for(resource_type: str) -> ResourceHandler | None:
    """The handler for a resource type, or None when no module handles it."""
    return interface._HANDLERS.get(resource_type)


def supported_types() -> list[str]:
    """Every resource type with a handler, sorted."""
    return sorted(interface._HANDLERS)


_empty = [m.__name__ for m in HANDLER_MODULES if not types_of(m)]
if _empty:  # pragma: no cover - a handler module that handles nothing is a wiring mistake
    raise ImportError(f"handler modules that register no resource type: {', '.join(_empty)}")
