"""CloudWatch over the local metric store and alarms (:mod:`stsmon.monitoring.metrics`), with boto3's shapes.

- ``describe_alarms``: the deployed metric alarms (``AlarmNames`` or
  ``AlarmNamePrefix``, ``StateValue``, ``AlarmTypes``), with their current
  state; numbers as numbers, times as datetimes.
- ``describe_alarm_history``: each alarm's recorded state changes as
  ``StateUpdate`` items (``HistoryData`` is the JSON CloudWatch writes:
  ``oldState``/``newState`` with ``stateValue`` and ``stateReason``), newest
  first unless ``ScanBy=TimestampAscending``, within ``StartDate``/``EndDate``.
- ``put_metric_data``: data points into the store; the alarms on that
  namespace are evaluated at the data's time (locally nothing evaluates
  alarms between calls, see the store's docstring).

Also here, the local runtime's part of a pipeline execution's end
(:func:`record_pipeline_execution`): SageMaker's own
``AWS/Sagemaker/ModelBuildingPipeline`` metrics and the evaluation of the
alarms on what the execution published.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from stscontracts import names

from ...clients.errors import client_error
from ...clock import Clock
from ...state import StateDir

#: SageMaker's own per-pipeline metrics (what the "monitor failed" alarm watches).
PIPELINE_NAMESPACE = names.PIPELINE_METRICS_NAMESPACE

_INTEGERS = ("Period", "EvaluationPeriods", "DatapointsToAlarm")


def _time(text: str | None) -> datetime | None:
    from ...monitoring.metrics import parse_time

    return parse_time(text) if text else None


def _metric_alarm(record: dict[str, Any]) -> dict[str, Any]:
    """An alarm record (the deployed AWS::CloudWatch::Alarm properties and its state) as DescribeAlarms shows it."""
    definition = dict(record.get("Definition") or {})
    alarm: dict[str, Any] = {"AlarmName": record["AlarmName"], "AlarmArn": record["AlarmArn"]}
    for key in ("AlarmDescription", "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Unit",
                "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile"):
        if definition.get(key) is not None:
            alarm[key] = str(definition[key])
    for key in _INTEGERS:
        if definition.get(key) is not None:
            alarm[key] = int(float(definition[key]))
    if definition.get("Threshold") is not None:
        alarm["Threshold"] = float(definition["Threshold"])
    for key in ("OKActions", "AlarmActions", "InsufficientDataActions"):
        alarm[key] = [str(a) for a in definition.get(key) or []]
    alarm["ActionsEnabled"] = str(definition.get("ActionsEnabled", True)).lower() != "false"
    alarm["Dimensions"] = [{"Name": str(d["Name"]), "Value": str(d["Value"])} for d in definition.get("Dimensions") or []]
    alarm["StateValue"] = record.get("StateValue", "INSUFFICIENT_DATA")
    alarm["StateReason"] = record.get("StateReason", "")
    updated = _time(record.get("StateUpdatedTimestamp"))
    if updated is not None:
        alarm["StateUpdatedTimestamp"] = updated
        alarm["StateTransitionedTimestamp"] = updated
        alarm["AlarmConfigurationUpdatedTimestamp"] = updated
    return alarm


class LocalCloudWatch:
    def __init__(self, state: StateDir, clock: Clock) -> None:
        self.state = state
        self.clock = clock
        self._puts = 0
        self._lock = threading.Lock()

    def describe_alarms(self, *, AlarmNames: list[str] | None = None, AlarmNamePrefix: str | None = None,  # noqa: N803
                        AlarmTypes: list[str] | None = None, StateValue: str | None = None,
                        MaxRecords: int | None = None, NextToken: str | None = None, **_: Any) -> dict[str, Any]:
        from ...monitoring.metrics import list_alarms

        if AlarmNames and AlarmNamePrefix:
            raise client_error("DescribeAlarms", "InvalidParameterCombination",
                               "AlarmNames and AlarmNamePrefix cannot be used together")
        alarms = []
        for record in list_alarms(self.state):
            name = record.get("AlarmName", "")
            if AlarmNames and name not in AlarmNames:
                continue
            if AlarmNamePrefix and not name.startswith(AlarmNamePrefix):
                continue
            if StateValue and record.get("StateValue") != StateValue:
                continue
            alarms.append(_metric_alarm(record))
        alarms.sort(key=lambda a: a["AlarmName"])
        start = int(NextToken or 0)
        size = MaxRecords or 50
        page = alarms[start:start + size]
        out: dict[str, Any] = {"MetricAlarms": page if (not AlarmTypes or "MetricAlarm" in AlarmTypes) else [],
                               "CompositeAlarms": []}
        if start + size < len(alarms):
            out["NextToken"] = str(start + size)
        return out

    def describe_alarm_history(self, *, AlarmName: str | None = None, AlarmTypes: list[str] | None = None,  # noqa: N803
                               HistoryItemType: str | None = None, StartDate: datetime | None = None,
                               EndDate: datetime | None = None, MaxRecords: int | None = None,
                               NextToken: str | None = None, ScanBy: str = "TimestampDescending",
                               **_: Any) -> dict[str, Any]:
        from ...monitoring.metrics import list_alarms

        items = []
        # History times are kept to the millisecond (older records: to the second).
        StartDate = _aware(StartDate).replace(microsecond=StartDate.microsecond // 1000 * 1000) if StartDate else None
        EndDate = _aware(EndDate) if EndDate else None
        if HistoryItemType in (None, "StateUpdate") and (not AlarmTypes or "MetricAlarm" in AlarmTypes):
            for record in list_alarms(self.state):
                if AlarmName and record.get("AlarmName") != AlarmName:
                    continue
                for change in record.get("History") or []:
                    stamp = _time(change.get("Timestamp"))
                    if stamp is None or (StartDate and stamp < StartDate) or (EndDate and stamp > EndDate):
                        continue
                    data = {"version": "1.0",
                            "oldState": {"stateValue": change.get("From"), "stateReason": ""},
                            "newState": {"stateValue": change.get("To"), "stateReason": change.get("Reason", "")}}
                    items.append({"AlarmName": record["AlarmName"], "AlarmType": "MetricAlarm", "Timestamp": stamp,
                                  "HistoryItemType": "StateUpdate",
                                  "HistorySummary": f"Alarm updated from {change.get('From')} to {change.get('To')}",
                                  "HistoryData": json.dumps(data)})
        items.sort(key=lambda i: i["Timestamp"], reverse=ScanBy != "TimestampAscending")
        start = int(NextToken or 0)
        size = MaxRecords or 100
        out: dict[str, Any] = {"AlarmHistoryItems": items[start:start + size]}
        if start + size < len(items):
            out["NextToken"] = str(start + size)
        return out

    def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]], **_: Any) -> dict[str, Any]:  # noqa: N803
        from ...monitoring.metrics import MetricStore, evaluate_alarms, iso

        now = self.clock.now()
        data = [{**d, "Timestamp": iso(_aware(d["Timestamp"])) if isinstance(d.get("Timestamp"), datetime)
                 else (d.get("Timestamp") or iso(now))} for d in MetricData]
        with self._lock:
            self._puts += 1
            source = f"client:{now.strftime('%Y%m%dT%H%M%S%f')}#{self._puts}"
        if MetricStore(self.state).put(Namespace, data, source=source):
            latest = max(_time(d["Timestamp"]) for d in data)
            evaluate_alarms(self.state, latest, now=now, namespace=Namespace)
        return {}


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_pipeline_execution(state: StateDir, execution: dict[str, Any], *, clock: Clock) -> None:
    """What the cloud does when a pipeline execution ends, done by the local runtime:

    SageMaker publishes ``ExecutionStarted``/``Succeeded``/``Failed``/``Stopped`` to
    ``AWS/Sagemaker/ModelBuildingPipeline`` (dimension ``PipelineName``), and CloudWatch
    evaluates the alarms on those and on whatever the execution's jobs published
    (``PutMetricData`` through the job endpoint, tagged with the execution id). Locally
    this happens once, at the end of the execution, at the time of the data.
    """
    from ...monitoring.metrics import MetricStore, evaluate_alarms, iso, parse_time

    now = clock.now()
    store = MetricStore(state)
    execution_id = execution.get("PipelineExecutionId") or str(execution.get("PipelineExecutionArn", "")).rsplit("/", 1)[-1]
    for namespace, points in sorted(store.published_by(f"{execution_id}#").items()):
        evaluate_alarms(state, max(p.timestamp for p in points), now=now, namespace=namespace)
    status = execution.get("PipelineExecutionStatus")
    if status not in ("Succeeded", "Failed", "Stopped"):
        return
    stamp = execution.get("EndTime") or execution.get("LastModifiedTime") or iso(now)
    dims = [{"Name": names.DIMENSION_PIPELINE, "Value": execution.get("PipelineName", "")}]
    data = [{"MetricName": name, "Timestamp": stamp, "Dimensions": dims, "Value": value, "Unit": "Count"}
            for name, value in (("ExecutionStarted", 1.0), ("ExecutionSucceeded", float(status == "Succeeded")),
                                (names.METRIC_EXECUTION_FAILED, float(status == "Failed")), ("ExecutionStopped", float(status == "Stopped")))]
    store.put(PIPELINE_NAMESPACE, data, source=f"{execution_id}:pipeline")
    evaluate_alarms(state, parse_time(stamp), now=now, namespace=PIPELINE_NAMESPACE)
