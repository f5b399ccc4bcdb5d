"""Reply to CloudFormation for a Lambda-backed custom resource.

CloudFormation waits (up to an hour) for a PUT to the pre-signed
``ResponseURL`` of the event; :func:`run` guarantees one is sent, SUCCESS
with the handler's data or FAILED with a readable reason, whatever happens.
"""

from __future__ import annotations

import json
import logging
import traceback
import urllib.request
from collections.abc import Callable
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)

#: CloudFormation shows at most this much of a FAILED reason.
MAX_REASON = 1000


class UserFacingError(Exception):
    """A failure whose message is the whole story (no traceback needed)."""


def respond(event: dict, context: Any, status: str, data: dict | None, physical_id: str, reason: str = "") -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": (reason or f"See CloudWatch log stream {getattr(context, 'log_stream_name', '?')}")[:MAX_REASON],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": data or {},
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"content-type": "", "content-length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - CloudFormation's pre-signed https URL
        logger.info("CloudFormation response: %s %s", status, response.status)


def run(event: dict, context: Any, handle: Callable[[str, dict, dict], tuple[str, dict]]) -> None:
    """Call ``handle(request_type, properties, old_properties) -> (physical_id, data)``
    and report the outcome to CloudFormation."""
    logger.info("%s %s", event.get("RequestType"), json.dumps(event.get("ResourceProperties", {}), default=str))
    physical_id = event.get("PhysicalResourceId") or event["LogicalResourceId"]
    try:
        physical_id, data = handle(
            event["RequestType"], event.get("ResourceProperties", {}), event.get("OldResourceProperties", {})
        )
    except UserFacingError as exc:
        logger.error("%s", exc)
        respond(event, context, "FAILED", None, physical_id, str(exc))
        return
    except Exception as exc:  # every failure must reach CloudFormation, or it waits an hour
        logger.error("%s", traceback.format_exc())
        respond(event, context, "FAILED", None, physical_id, f"{type(exc).__name__}: {exc}")
        return
    respond(event, context, "SUCCESS", data, physical_id)
