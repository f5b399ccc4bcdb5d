"""Resource handlers: what each CloudFormation resource type means locally.

A handler is a subclass of :class:`ResourceHandler` registered for one or more
resource types with :func:`register`::

    from stsmon.localcloud.handlers import DeployContext, HandlerResult, ResourceHandler, register

    @register("AWS::SageMaker::Endpoint")
    class EndpointHandler(ResourceHandler):
        def check(self, ctx, logical_id, props):      # optional: refuse before anything changes
            ...
        def create(self, ctx, logical_id, props):
            return HandlerResult(physical_id=props["EndpointName"], attributes={"EndpointName": ...})
        def update(self, ctx, logical_id, props, previous):   # optional, default: delete + create
            ...
        def delete(self, ctx, logical_id, previous):
            ...
        def refresh(self, ctx, logical_id, props, previous):  # optional: unchanged resource, every deploy
            ...

The deployer (:mod:`stsmon.localcloud.deployer`) deploys one stack in two
phases. **Check**: every resource type must have a handler, every intrinsic
must be supported, and each handler's :meth:`ResourceHandler.check` sees the
properties resolved as far as possible before anything is created (values
that only exist after a create are :class:`Unresolved`); any error stops the
deploy with nothing changed. **Apply**: in dependency order, each resource's
properties are resolved for real and ``create``/``update`` is called; removed
resources are deleted last. If an apply step fails, what this deploy created
is deleted and what it updated is updated back (CloudFormation's rollback),
and the stack keeps its previous record.

Which modules provide the handlers is one explicit table,
:mod:`stsmon.resource_handlers`: it imports every handler module (a missing
one is an ImportError, never a skip) and answers :func:`handler_for`. This
package is only the interface those modules implement. Properties
arrive resolved: plain JSON values (str, int, float, bool, list, dict), with
CloudFormation's string forms (numbers and booleans in templates are often
strings: ``"true"``, ``"5"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ...clients.serving import ServingOptions
from ...clock import Clock
from ...errors import StsmonError
from ...state import StateDir
from .. import LocalEnvironment

if TYPE_CHECKING:  # pragma: no cover
    from ..assembly import Assembly
    from ..registry import Registry

#: What :func:`register` recorded: resource type -> handler (read by :mod:`stsmon.resource_handlers`).
_HANDLERS: dict[str, ResourceHandler] = {}


class DeployError(StsmonError):
    """A stack could not be deployed; the message names the stack and resource."""


class Unresolved:
    """A value that exists only once another resource has been created.

    Seen only by :meth:`ResourceHandler.check`; ``str(u)`` says what it stands
    for (``"<Fn::GetAtt Bucket.Arn>"``). Functions applied to it (``Fn::Join``,
    ``Fn::Sub`` ...) give another :class:`Unresolved`.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unresolved) and other.what == self.what

    def __hash__(self) -> int:
        return hash(self.what)


def is_resolved(value: Any) -> bool:
    """True when ``value`` (recursively) contains no :class:`Unresolved`."""
    if isinstance(value, Unresolved):
        return False
    if isinstance(value, dict):
        return all(is_resolved(v) for v in value.values())
    if isinstance(value, list):
        return all(is_resolved(v) for v in value)
    return True


@dataclass(frozen=True)
class DeployedResource:
    """One resource as recorded in ``deployments/{stack}.json``."""

    logical_id: str
    type: str
    physical_id: str
    properties: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "Type": self.type,
            "PhysicalResourceId": self.physical_id,
            "Properties": self.properties,
            "Attributes": self.attributes,
            "Metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, logical_id: str, data: Mapping[str, Any]) -> DeployedResource:
        return cls(
            logical_id=logical_id,
            type=data["Type"],
            physical_id=data["PhysicalResourceId"],
            properties=dict(data.get("Properties") or {}),
            attributes=dict(data.get("Attributes") or {}),
            metadata=dict(data.get("Metadata") or {}),
        )


@dataclass(frozen=True)
class HandlerResult:
    """What a create/update returns: the physical id (what ``Ref`` gives) and the
    attributes ``Fn::GetAtt`` may ask for."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployContext:
    """Everything a handler may use. One per stack deploy.

    ``outputs``: the outputs of every stack deployed locally (stack name ->
    output key -> value), including stacks deployed earlier in this run;
    ``exports``: export name -> value (what ``Fn::ImportValue`` reads).
    ``echo`` prints one progress line for the user; ``clock`` gives every
    time a handler records (creation times, alarm states, schedules). ``deleting_stack`` is
    True while the whole stack is being destroyed (CloudFormation's
    ``DELETE_IN_PROGRESS``), False for a resource removed from the template,
    replaced or rolled back.
    """

    state: StateDir
    env: LocalEnvironment
    stack_name: str
    clock: Clock
    serving: ServingOptions = field(default_factory=ServingOptions)
    assembly: Assembly | None = None
    outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    exports: Mapping[str, str] = field(default_factory=dict)
    echo: Callable[[str], None] = lambda message: None
    deleting_stack: bool = False
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def registry(self) -> Registry:
        """The local model registry (opened on first use)."""
        if self._registry is None:
            from ..registry import Registry

            self._registry = Registry(self.state.registry_db, env=self.env, clock=self.clock)
        return self._registry

    def asset_path(self, bucket: str, key: str) -> Path | None:
        """The cdk.out file or folder behind an asset's ``bucket``/``key``, if it is one."""
        if self.assembly is None:
            return None
        return self.assembly.asset_source(bucket, key, self.env)


class ResourceHandler:
    """Base class of a resource type's local meaning. Subclass and :func:`register`.

    Handlers are stateless singletons: keep state on disk under ``ctx.state``.
    Raise :class:`stsmon.errors.StsmonError` (or :class:`DeployError`) with a
    message for people; the deployer adds the stack and logical id.
    """

    #: The types this handler was registered for (set by :func:`register`).
    resource_types: ClassVar[tuple[str, ...]] = ()

    def check(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> None:
        """Refuse early (before anything in the stack changes). Default: accept.

        ``props`` are resolved except where a value depends on a resource not
        created yet (:class:`Unresolved`). Must not change anything.
        """

    def create(self, ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> HandlerResult:
        raise NotImplementedError

    def update(
        self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource
    ) -> HandlerResult:
        """Apply changed properties. Default: replace (delete the old, create the new)."""
        self.delete(ctx, logical_id, previous)
        return self.create(ctx, logical_id, props)

    def delete(self, ctx: DeployContext, logical_id: str, previous: DeployedResource) -> None:
        raise NotImplementedError

    def refresh(
        self, ctx: DeployContext, logical_id: str, props: dict[str, Any], previous: DeployedResource
    ) -> HandlerResult | None:
        """Called on every deploy for a resource whose properties did not change
        (e.g. restart a local server that is no longer running, honour
        ``ctx.serving.stop``). Return a new result to record, or None (default)."""
        return None


def register(*resource_types: str) -> Callable[[type[ResourceHandler]], type[ResourceHandler]]:
    """Class decorator: the handler for ``resource_types`` (one instance is kept).

    Registering a type twice is an error (two modules disagree about its meaning).
    """
    if not resource_types:
        raise ValueError("register() needs at least one resource type")

    def decorate(cls: type[ResourceHandler]) -> type[ResourceHandler]:
        instance = cls()
        cls.resource_types = tuple(resource_types)
        for rtype in resource_types:
            existing = _HANDLERS.get(rtype)
            if existing is not None and type(existing).__qualname__ != cls.__qualname__:
                raise ValueError(f"two handlers for {rtype}: {type(existing).__qualname__} and {cls.__qualname__}")
            _HANDLERS[rtype] = instance
        return cls

    return decorate
