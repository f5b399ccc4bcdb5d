"""Every call against botocore's service model: parameters on the way in, responses on the way out.

The local clients (:mod:`stsmon.localcloud.api`) are wrapped in
:class:`ValidatingClient`, so a local run checks each call a command makes
the way boto3 and the service would:

- **parameters**: botocore's own :class:`~botocore.validate.ParamValidator`
  on the operation's input shape (unknown, missing, mistyped members: boto3
  raises :class:`~botocore.exceptions.ParamValidationError` before sending,
  and so does the wrapper), plus what the service checks and botocore does
  not: enum values, maximum lengths and the model's ``pattern`` (names,
  ARNs, display names);
- **responses**: the output shape, stricter than botocore's own checks
  (which the Stubber applies to canned responses): timestamps must be
  timezone-aware ``datetime`` objects (what boto3's parser returns, never
  strings), enum members must be the model's values, streaming bodies must
  be botocore ``StreamingBody`` objects, and no member the model does not
  declare. A response that fails is a fault of the local runtime: it raises
  :class:`LocalResponseInvalid`, which names the operation and every problem.

So a command that runs locally has proven that its AWS calls are well-formed
and that it only relies on what AWS returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from ..errors import StsmonError


class LocalResponseInvalid(StsmonError):
    """A local client returned what the AWS service never would (a fault of the local runtime)."""


@lru_cache(maxsize=None)
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@lru_cache(maxsize=None)
def service_model(service: str) -> Any:
    """botocore's model of ``service`` (``sagemaker``, ``s3``, ...), loaded once per process."""
    return _session().get_service_model(service)


@lru_cache(maxsize=None)
def method_operations(service: str) -> dict[str, str]:
    """boto3 method name -> API operation name (``list_objects_v2`` -> ``ListObjectsV2``)."""
    from botocore import xform_name

    return {xform_name(name): name for name in service_model(service).operation_names}


@lru_cache(maxsize=None)
def paginator_config(service: str, method: str) -> dict[str, Any] | None:
    """botocore's paginator configuration of an operation (None: the operation does not paginate)."""
    operation = method_operations(service).get(method)
    try:
        model = _session().get_paginator_model(service)
        return model.get_paginator(operation)
    except Exception:  # botocore raises ValueError / DataNotFoundError for "no paginator"
        return None


def operation_model(service: str, method: str) -> Any:
    operation = method_operations(service).get(method)
    if operation is None:
        raise AttributeError(f"{service} has no operation {method!r}")
    return service_model(service).operation_model(operation)


def _enum_problem(value: Any, shape: Any) -> str | None:
    enum = getattr(shape, "enum", None) or []
    if enum and isinstance(value, str) and value not in enum:
        return f"{value!r} is not one of {', '.join(enum)}"
    return None


@lru_cache(maxsize=None)
def _pattern(text: str | None) -> Any:
    """A model's ``pattern`` (the service checks it; botocore does not), when Python's ``re`` reads it
    (a few use Java-only classes such as ``\\p{...}``: those are left to the service)."""
    import re

    if not text:
        return None
    try:
        return re.compile(text, re.DOTALL)
    except re.error:
        return None


def _validator_classes() -> tuple[type, type]:
    from botocore.validate import ParamValidator

    class RequestValidator(ParamValidator):
        """botocore's parameter checks plus enum values (the service refuses an unknown one)."""

        def _validate_string(self, param: Any, shape: Any, errors: Any, name: str) -> None:
            super()._validate_string(param, shape, errors, name)
            if not isinstance(param, str):
                return
            problem = _enum_problem(param, shape)
            if problem:
                errors.report(name, "invalid type", param=param, valid_types=[f"one of {', '.join(shape.enum)}"])
            limit = shape.metadata.get("max")
            if isinstance(limit, int) and len(param) > limit:
                errors.report(name, "invalid type", param=param, valid_types=[f"a string of at most {limit} characters"])
            pattern = _pattern(shape.metadata.get("pattern"))
            if pattern is not None and not pattern.fullmatch(param):
                errors.report(name, "invalid type", param=param,
                              valid_types=[f"a string matching {shape.metadata['pattern']}"])

        def _validate_list(self, param: Any, shape: Any, errors: Any, name: str) -> None:
            # botocore checks unconstrained scalar members by type only; enums are checked member by member.
            if not isinstance(param, (list, tuple)) or not getattr(shape.member, "enum", None):
                return super()._validate_list(param, shape, errors, name)
            for i, item in enumerate(param):
                self._validate(item, shape.member, errors, f"{name}[{i}]")

    class ResponseValidator(RequestValidator):
        """What boto3 hands a caller: aware datetimes, StreamingBody payloads, declared members only."""

        def _validate_timestamp(self, param: Any, shape: Any, errors: Any, name: str) -> None:
            if not isinstance(param, datetime) or param.tzinfo is None:
                errors.report(name, "invalid type", param=param,
                              valid_types=["timezone-aware datetime (boto3 parses every timestamp into one)"])

        def _validate_blob(self, param: Any, shape: Any, errors: Any, name: str) -> None:
            # A streaming payload is checked by response_problems; any other blob arrives as bytes.
            if not isinstance(param, (bytes, bytearray)):
                errors.report(name, "invalid type", param=param, valid_types=[str(bytes)])

    return RequestValidator, ResponseValidator


_VALIDATORS: tuple[Any, Any] | None = None


def _validators() -> tuple[Any, Any]:
    global _VALIDATORS
    if _VALIDATORS is None:
        request, response = _validator_classes()
        _VALIDATORS = (request(), response())
    return _VALIDATORS


def with_idempotency_tokens(service: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with a fresh token in every idempotency-token member left out, as botocore fills them
    (``botocore.handlers.generate_idempotent_uuid``) before it validates a request."""
    import uuid

    shape = operation_model(service, method).input_shape
    if shape is None:
        return params
    missing = [name for name, member in shape.members.items()
               if member.metadata.get("idempotencyToken") and name not in params]
    return {**params, **{name: str(uuid.uuid4()) for name in missing}} if missing else params


def check_request(service: str, method: str, params: dict[str, Any]) -> None:
    """Raise botocore's ParamValidationError for parameters boto3 or the service would refuse."""
    from botocore.exceptions import ParamValidationError

    shape = operation_model(service, method).input_shape
    if shape is None:
        if params:
            raise ParamValidationError(report=f"{method} takes no parameters, got {', '.join(params)}")
        return
    report = _validators()[0].validate(params, shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def response_problems(service: str, method: str, response: Any) -> list[str]:
    """Why ``response`` is not what AWS returns for ``method`` (empty: it is)."""
    from botocore.response import StreamingBody

    model = operation_model(service, method)
    shape = model.output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"} if isinstance(response, dict) else response
    if shape is None:
        return [] if not body else [f"the operation has no output, got {sorted(body)}"]
    problems = []
    if model.has_streaming_output and isinstance(body, dict):
        # botocore hands a streaming payload (GetObject's, InvokeEndpoint's Body) over unread, as a StreamingBody.
        payload = shape.serialization.get("payload")
        if payload in body:
            if not isinstance(body[payload], StreamingBody):
                problems.append(f"Invalid type for parameter {payload}, value: {body[payload]!r}, type: "
                                f"{type(body[payload])}, valid types: botocore.response.StreamingBody")
            body = {**body, payload: b""}  # checked above; the rest is checked against the shape
    report = _validators()[1].validate(body, shape)
    return problems + (report.generate_report().splitlines() if report.has_errors() else [])


def check_response(service: str, method: str, response: Any) -> None:
    problems = response_problems(service, method, response)
    if problems:
        raise LocalResponseInvalid(
            f"the local {service} client's {method} response is not what AWS returns "
            f"(botocore's {service} model): " + "; ".join(problems))


class CallLog:
    """Every validated call (service, method, parameter names, outcome), in order; thread-safe."""

    def __init__(self, sink: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self._sink = sink
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(entry)
        if self._sink is not None:
            self._sink(entry)

    def operations(self, service: str | None = None) -> set[str]:
        return {f"{c['service']}.{c['method']}" if service is None else c["method"]
                for c in self.calls if service is None or c["service"] == service}


class ValidatingClient:
    """A boto3-shaped client whose every call is checked against botocore's model (see the module doc).

    ``inner`` implements the methods (keyword arguments only, as boto3's);
    ``get_paginator`` pages through the validated calls with botocore's
    paginator configuration, as a boto3 paginator does.
    """

    def __init__(self, inner: Any, service: str, *, log: CallLog | None = None) -> None:
        self._inner = inner
        self._service = service
        self._log = log
        self._methods = method_operations(service)

    @property
    def service(self) -> str:
        return self._service

    @property
    def inner(self) -> Any:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._methods:
            raise AttributeError(f"{self._service} client has no method {name!r}")
        implementation = getattr(self._inner, name, None)
        if implementation is None:
            raise NotImplementedError(
                f"the local runtime does not implement {self._service}.{name} "
                f"(boto3 has it; add it to stsmon/localcloud/api/ if a command needs it)")

        def call(**params: Any) -> Any:
            params = with_idempotency_tokens(self._service, name, params)
            check_request(self._service, name, params)
            entry = {"service": self._service, "method": name, "params": sorted(params)}
            try:
                response = implementation(**params)
            except Exception as exc:
                entry["error"] = _error_code(exc)
                if self._log is not None:
                    self._log.add(entry)
                raise
            problems = response_problems(self._service, name, response)
            entry["response_valid"] = not problems
            if self._log is not None:
                self._log.add(entry)
            if problems:
                check_response(self._service, name, response)
            return response

        call.__name__ = name
        return call

    def get_paginator(self, method: str) -> Any:
        from .pagination import Paginator

        config = paginator_config(self._service, method)
        if config is None:
            raise ValueError(f"operation {method} of {self._service} cannot be paginated")
        return Paginator(getattr(self, method), config)

    def can_paginate(self, method: str) -> bool:
        return paginator_config(self._service, method) is not None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code", type(exc).__name__))
    return type(exc).__name__
