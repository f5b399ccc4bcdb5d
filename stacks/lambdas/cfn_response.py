"""Reply to CloudFormation for a Lambda-backed custom resource, exactly once.

The protocol, as documented (AWS CloudFormation User Guide: "Custom resource
request types" Create/Update/Delete and "Custom resource response objects";
the lifecycle notes of the aws-cdk-lib ``custom_resources`` README, v2.275.0):

- **Create**: the provider chooses the ``PhysicalResourceId``. When Create
  answers FAILED, CloudFormation rolls back and sends a Delete carrying the id
  of that FAILED answer (or one it invents, ``{stack}-{logical id}-{suffix}``,
  when no answer came): Delete must succeed for something never created.
- **Update**: the event carries the current ``PhysicalResourceId``, the new
  ``ResourceProperties`` and the ``OldResourceProperties``. Answering another
  id is a *replacement*: once the update succeeds CloudFormation sends a Delete
  for the old id, with the old properties. When the stack update fails later,
  CloudFormation rolls back with one more Update whose ``ResourceProperties``
  are the previous ones (the two property sets swapped).
- **Delete**: the answer carries the event's ``PhysicalResourceId``. A FAILED
  Delete blocks a stack deletion (``DELETE_FAILED``; deleting again retries).
- The response body is at most 4096 bytes; ``PhysicalResourceId`` is a
  non-empty string of at most 1 KB.
- CloudFormation waits for the answer up to the resource's ``ServiceTimeout``
  (default 3600 s).

What :func:`run` guarantees on top:

- **one answer per invocation**: a lock between the handler's answer and a
  timer's; nothing is raised out of the Lambda (an error would make Lambda
  retry the asynchronous invocation, which would answer a second time; the
  functions are also deployed with no retries);
- **an answer before the Lambda times out**: a timer fires ``MARGIN_S``
  before the Lambda's deadline and answers FAILED, naming the last progress
  the handler reported (the approach of aws-cloudformation/custom-resource-helper
  ``crhelper/resource_helper.py`` ``_set_timeout``, plus the lock it lacks);
  handlers read :meth:`Request.time_left_ms` to stop cleanly before that;
- **ids that follow the protocol**: Delete answers the id it was sent, a
  failed Update the id it had, a failed Create ``create-failed-{RequestId}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)

#: CloudFormation's limits on an answer.
MAX_BODY_BYTES = 4096
MAX_PHYSICAL_ID_BYTES = 1024
#: Longest reason we send (CloudFormation shows the start of it in the events).
MAX_REASON = 1000
#: Seconds before the Lambda's deadline at which the timer answers FAILED.
MARGIN_S = 15.0
#: Seconds for one PUT to the pre-signed response URL; attempts while time remains.
PUT_TIMEOUT_S = 10.0
PUT_ATTEMPTS = 3

#: Properties CloudFormation adds to ``ResourceProperties`` that are not ours.
SERVICE_PROPERTIES = ("ServiceToken", "ServiceTimeout")


class UserFacingError(Exception):
    """A failure whose message is the whole story (no traceback needed)."""


@dataclass
class Request:
    """One CloudFormation request, as the handler sees it.

    ``physical_id`` is None on Create. ``properties``/``old_properties``
    exclude ``ServiceToken``/``ServiceTimeout``.
    """

    request_type: str
    properties: dict
    old_properties: dict
    physical_id: str | None
    stack_id: str
    logical_id: str
    request_id: str
    #: Milliseconds the handler may still use (the Lambda's remaining time minus the timer's margin).
    time_left_ms: Callable[[], float] = lambda: float("inf")
    _progress: list[str] = field(default_factory=list, repr=False)

    def progress(self, text: str) -> None:
        """Record what has been done so far; a timeout answer quotes the last one."""
        self._progress[:] = [text]

    @property
    def last_progress(self) -> str:
        return self._progress[-1] if self._progress else ""


def failed_create_id(event: dict) -> str:
    """The id a FAILED Create answers: unique, and recognisably nothing."""
    return f"create-failed-{event['RequestId']}"


class _Responder:
    """Sends the one answer of an invocation (thread-safe)."""

    def __init__(self, event: dict, context: Any, put: Callable[[str, bytes], int], remaining_ms: Callable[[], float],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.event, self.context, self.put, self.remaining_ms, self.sleep = event, context, put, remaining_ms, sleep
        self._lock = threading.Lock()
        self.sent: dict | None = None

    def send(self, status: str, physical_id: str, data: dict | None = None, reason: str = "") -> bool:
        """Answer once; later calls do nothing and return False."""
        with self._lock:
            if self.sent is not None:
                logger.warning("not answering %s: already answered %s", status, self.sent["Status"])
                return False
            body = self._body(status, physical_id, data, reason)
            self.sent = json.loads(body)
        self._put(body)
        return True

    def _body(self, status: str, physical_id: str, data: dict | None, reason: str) -> bytes:
        if status == "SUCCESS":
            problem = _id_problem(physical_id) or _data_problem(data)
            if problem:
                status, data, reason = "FAILED", None, problem
                physical_id = self._fallback_id()
        return self._encode(status, physical_id, data, reason)

    def _fallback_id(self) -> str:
        return self.event.get("PhysicalResourceId") or failed_create_id(self.event)

    def _encode(self, status: str, physical_id: str, data: dict | None, reason: str) -> bytes:
        stream = getattr(self.context, "log_stream_name", "?")
        reason = reason or (f"See CloudWatch log stream {stream}" if status == "FAILED" else "")
        body = json.dumps({
            "Status": status,
            "Reason": reason[:MAX_REASON],
            "PhysicalResourceId": physical_id,
            "StackId": self.event["StackId"],
            "RequestId": self.event["RequestId"],
            "LogicalResourceId": self.event["LogicalResourceId"],
            "NoEcho": False,
            "Data": data or {},
        }).encode()
        if status == "SUCCESS" and len(body) > MAX_BODY_BYTES:
            keys = ", ".join(sorted(data or {}))
            return self._encode("FAILED", self._fallback_id(), None,
                                f"the answer would be {len(body)} bytes, over CloudFormation's {MAX_BODY_BYTES}-byte limit (attributes: {keys})")
        return body

    def _put(self, body: bytes) -> None:
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                status = self.put(self.event["ResponseURL"], body)
                logger.info("CloudFormation answer %s: HTTP %s", json.loads(body)["Status"], status)
                return
            except Exception as exc:  # network trouble: try again while the Lambda has time
                logger.error("answering CloudFormation failed (attempt %d): %s", attempt, exc)
                if attempt == PUT_ATTEMPTS or self.remaining_ms() < (PUT_TIMEOUT_S + 2 ** attempt) * 1000:
                    return
                self.sleep(2 ** (attempt - 1))


def _id_problem(physical_id: Any) -> str:
    if not isinstance(physical_id, str) or not physical_id:
        return f"the handler returned no PhysicalResourceId ({physical_id!r})"
    if len(physical_id.encode()) > MAX_PHYSICAL_ID_BYTES:
        return f"the handler's PhysicalResourceId is {len(physical_id.encode())} bytes, over CloudFormation's 1 KB"
    return ""


def _data_problem(data: Any) -> str:
    if data is not None and not isinstance(data, dict):
        return f"the handler returned Data that is not an object ({type(data).__name__})"
    return ""


def put_response(url: str, body: bytes) -> int:
    """PUT the answer to CloudFormation's pre-signed S3 URL; returns the HTTP status."""
    request = urllib.request.Request(url, data=body, method="PUT", headers={"content-type": "", "content-length": str(len(body))})
    with urllib.request.urlopen(request, timeout=PUT_TIMEOUT_S) as response:  # noqa: S310 - CloudFormation's pre-signed https URL
        return response.status


def run(
    event: dict,
    context: Any,
    handle: Callable[[Request], tuple[str, dict]],
    *,
    put: Callable[[str, bytes], int] = put_response,
    timer: Callable[[float, Callable[[], None]], Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict | None:
    """Call ``handle(request) -> (physical_id, data)`` and answer CloudFormation
    exactly once (see the module docstring). Returns the answer sent (for tests
    and logs); never raises.

    ``timer(seconds, callback)`` must return an object with ``start()`` and
    ``cancel()``; default :class:`threading.Timer`. ``sleep`` paces retried PUTs.
    """
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None) or (lambda: 900_000.0)
    request_type = event.get("RequestType", "?")
    props = {k: v for k, v in (event.get("ResourceProperties") or {}).items() if k not in SERVICE_PROPERTIES}
    logger.info("%s %s %s", request_type, event.get("PhysicalResourceId", "(new)"), json.dumps(props, default=str))
    responder = _Responder(event, context, put, remaining_ms, sleep)
    current_id = event.get("PhysicalResourceId") or failed_create_id(event)
    request = Request(
        request_type=request_type,
        properties=props,
        old_properties={k: v for k, v in (event.get("OldResourceProperties") or {}).items() if k not in SERVICE_PROPERTIES},
        physical_id=event.get("PhysicalResourceId"),
        stack_id=event.get("StackId", ""),
        logical_id=event.get("LogicalResourceId", ""),
        request_id=event.get("RequestId", ""),
        time_left_ms=lambda: remaining_ms() - MARGIN_S * 1000,
    )

    def on_timeout() -> None:
        done = f"; done so far: {request.last_progress}" if request.last_progress else ""
        limit = f"{request_type} ran out of time: the Lambda stops in {MARGIN_S:.0f} s{done}"
        hint = " Deleting again resumes where this stopped." if request_type == "Delete" else ""
        logger.error("%s", limit)
        responder.send("FAILED", current_id, None, limit + "." + hint)

    clock = (timer or threading.Timer)(max(remaining_ms() / 1000.0 - MARGIN_S, 0.0), on_timeout)
    clock.start()
    try:
        if request_type not in ("Create", "Update", "Delete"):
            raise UserFacingError(f"unknown RequestType {request_type!r}")
        physical_id, data = handle(request)
        if request_type == "Delete":
            physical_id = current_id  # a Delete answers the id it was sent
        responder.send("SUCCESS", physical_id, data)
    except UserFacingError as exc:
        logger.error("%s", exc)
        responder.send("FAILED", current_id, None, str(exc))
    except Exception as exc:  # every failure must reach CloudFormation, or it waits until ServiceTimeout
        logger.error("%s", traceback.format_exc())
        responder.send("FAILED", current_id, None, f"{type(exc).__name__}: {exc}")
    finally:
        clock.cancel()
    return responder.sent
