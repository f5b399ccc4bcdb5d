"""AWS errors as boto3 raises them, for both targets.

The local clients raise :class:`botocore.exceptions.ClientError` with the
error code and HTTP status the service uses, so a command handles an error
once, by its code, whichever client raised it.
"""

from __future__ import annotations

from typing import Any

#: Error codes that mean "no such resource", per service and operation (what AWS answers).
NOT_FOUND_CODES = frozenset({
    "ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "404", "NotFound",
})


def client_error(operation: str, code: str, message: str, *, status: int = 400) -> Exception:
    """A ``ClientError`` as botocore builds it from a service's error response."""
    from botocore.exceptions import ClientError

    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return (response.get("Error") or {}).get("Code")
    return None


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Message", exc))
    return str(exc)


def is_not_found(exc: BaseException) -> bool:
    """The resource does not exist: a not-found code, or CloudFormation's and SageMaker's
    ``ValidationError``/``ValidationException`` "... does not exist"."""
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return True
    return code in ("ValidationError", "ValidationException") and "does not exist" in error_message(exc)
