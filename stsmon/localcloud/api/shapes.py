"""Values as the AWS API carries them: a pipeline expression evaluated locally may be a number
where the API has a string (a ``Float`` parameter in ``ContainerArguments``); SageMaker sends the
job request as strings, so the local runtime's answers do too."""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # the pipeline's Boolean parameters' string form
    return str(value)


def conform(value: Any, shape: Any) -> Any:
    """``value`` with every number or boolean that ``shape`` (a botocore shape) types as a string made one."""
    kind = shape.type_name
    if kind == "string" and isinstance(value, (int, float, bool)):
        return _text(value)
    if kind == "structure" and isinstance(value, dict):
        return {k: conform(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [conform(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: conform(v, shape.value) for k, v in value.items()}
    return value


def conform_output(service: str, method: str, response: dict[str, Any]) -> dict[str, Any]:
    from ...clients.validation import operation_model

    return conform(response, operation_model(service, method).output_shape)
