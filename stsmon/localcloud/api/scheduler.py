"""EventBridge Scheduler ``get_schedule`` / ``list_schedules`` over the local schedule records.

The records are what deploying an ``AWS::Scheduler::Schedule`` wrote
(:mod:`stsmon.monitoring.scheduler`); the local scheduler process runs them.
A missing schedule is ``ResourceNotFoundException`` (404), as on AWS.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...clients.errors import client_error
from ...state import StateDir

#: Shown for a schedule recorded before its role was (an older local deployment; deploy again to record it).
UNRECORDED_ROLE = "unrecorded: deploy the monitoring stack again"


def _created(record: dict[str, Any]) -> datetime:
    from ...monitoring.metrics import parse_time

    return parse_time(record.get("CreatedAt") or "1970-01-01T00:00:00Z")


def _target(record: dict[str, Any]) -> dict[str, Any]:
    target: dict[str, Any] = {"Arn": record["TargetArn"], "RoleArn": record.get("RoleArn") or UNRECORDED_ROLE}
    params = record.get("Parameters") or {}
    if params:
        target["SageMakerPipelineParameters"] = {
            "PipelineParameterList": [{"Name": k, "Value": str(v)} for k, v in params.items()]}
    return target


class LocalScheduler:
    def __init__(self, state: StateDir) -> None:
        self.state = state

    def _records(self) -> list[dict[str, Any]]:
        from ...monitoring.scheduler import list_schedules

        return list_schedules(self.state)

    def get_schedule(self, *, Name: str, GroupName: str = "default") -> dict[str, Any]:  # noqa: N803
        for record in self._records():
            if record.get("Name") == Name and record.get("GroupName", "default") == GroupName:
                created = _created(record)
                out = {"Arn": record["Arn"], "GroupName": record.get("GroupName", "default"), "Name": record["Name"],
                       "ScheduleExpression": record["ScheduleExpression"],
                       "ScheduleExpressionTimezone": record.get("ScheduleExpressionTimezone", "UTC"),
                       "State": record.get("State", "ENABLED"), "CreationDate": created,
                       "LastModificationDate": created, "Target": _target(record),
                       "FlexibleTimeWindow": {"Mode": "OFF"}, "ActionAfterCompletion": "NONE"}
                if record.get("Description"):
                    out["Description"] = record["Description"]
                return out
        raise client_error("GetSchedule", "ResourceNotFoundException", f"Schedule {Name} does not exist.", status=404)

    def list_schedules(self, *, GroupName: str | None = None, NamePrefix: str | None = None,  # noqa: N803
                       State: str | None = None, MaxResults: int | None = None, NextToken: str | None = None) -> dict[str, Any]:
        rows = []
        for record in self._records():
            if GroupName and record.get("GroupName", "default") != GroupName:
                continue
            if NamePrefix and not record["Name"].startswith(NamePrefix):
                continue
            if State and record.get("State", "ENABLED") != State:
                continue
            created = _created(record)
            rows.append({"Arn": record["Arn"], "Name": record["Name"], "GroupName": record.get("GroupName", "default"),
                         "State": record.get("State", "ENABLED"), "CreationDate": created,
                         "LastModificationDate": created, "Target": {"Arn": record["TargetArn"]}})
        start = int(NextToken or 0)
        size = MaxResults or 100
        out: dict[str, Any] = {"Schedules": rows[start:start + size]}
        if start + size < len(rows):
            out["NextToken"] = str(start + size)
        return out
