"""CloudFormation ``describe_stacks`` over the local deployment records (``deployments/{stack}.json``).

A locally deployed stack is ``CREATE_COMPLETE`` with its outputs (values as
strings, as CloudFormation returns them); one that is not deployed is
CloudFormation's ``ValidationError`` "Stack with id NAME does not exist".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ...clients.errors import client_error
from ...state import StateDir


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # a CommaDelimitedList-like output
        return ",".join(_text(v) for v in value)
    return str(value)


class LocalCloudFormation:
    def __init__(self, state: StateDir) -> None:
        self.state = state

    @staticmethod
    def _stack(record: Any) -> dict[str, Any]:
        deployed = datetime.fromisoformat(record.deployed_at)
        stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"stsmon:{record.account}:{record.region}:{record.stack_name}")
        stack: dict[str, Any] = {
            "StackId": record.env.arn("cloudformation", f"stack/{record.stack_name}/{stack_uuid}"),
            "StackName": record.stack_name,
            "CreationTime": deployed,
            "LastUpdatedTime": deployed,
            "StackStatus": "CREATE_COMPLETE",
            "DisableRollback": False,
            "Outputs": [{"OutputKey": key, "OutputValue": _text(value)} for key, value in record.outputs.items()],
        }
        if record.parameters:
            stack["Parameters"] = [{"ParameterKey": k, "ParameterValue": _text(v)} for k, v in record.parameters.items()]
        return stack

    def describe_stacks(self, *, StackName: str | None = None, NextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        from ..deployer import load_record, load_records

        if StackName is None:
            return {"Stacks": [self._stack(r) for r in load_records(self.state).values()]}
        name = StackName.split("/")[1] if StackName.startswith("arn:") and "/" in StackName else StackName
        record = load_record(self.state, name)
        if record is None:
            raise client_error("DescribeStacks", "ValidationError", f"Stack with id {StackName} does not exist")
        return {"Stacks": [self._stack(record)]}
