"""Pipeline executions on disk: the records, and reading, reconciling and stopping them.

One folder per execution, ``executions/{pipeline}/{id}/``:

- ``execution.json`` — DescribePipelineExecution's fields
  (``PipelineExecutionStatus`` Executing/Succeeded/Failed/Stopped,
  ``FailureReason``, ``CreationTime``, ``LastModifiedTime``, ``EndTime``,
  ``Parameters``), ``Steps`` (ListPipelineExecutionSteps' fields, plus
  ``Properties`` and ``LogDir``), ``NotExecuted`` and, while it runs,
  ``Executor`` — the process running it (:mod:`stsmon.supervisor`). Written
  atomically on every change (:class:`ExecutionRecord`).
- ``definition.json`` — the definition that ran; ``steps/{step}/`` — the
  step's job folder and logs.

An execution left ``Executing`` by a process that no longer exists is
marked Failed the next time executions are read (:func:`reconcile`, which
:func:`list_executions` and :func:`describe_execution` call).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import supervisor
from ..errors import NotDeployedError
from ..fileio import write_json_atomic
from ..state import StateDir
from .pipelines import StepSpec

TERMINAL = ("Succeeded", "Failed", "Stopped")
RECORD_FILE = "execution.json"


def stamp(moment: datetime) -> str:
    """Times in execution records: ISO-8601 with milliseconds and offset."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def executions_dir(state: StateDir, pipeline: str) -> Path:
    return state.executions / pipeline


def execution_folder(state: StateDir, pipeline: str, execution_id: str) -> Path:
    return executions_dir(state, pipeline) / execution_id


class ExecutionRecord:
    """The live record of one execution, saved on every change (thread-safe).

    ``now()`` gives the record's times (from the runner's clock); ``steps``
    the definition's steps (display names and types of new step entries).
    """

    def __init__(self, folder: Path, record: dict[str, Any], *, steps: Mapping[str, StepSpec],
                 now: Callable[[], str]) -> None:
        self.folder = folder
        self.data = record
        self.steps = steps
        self.now = now
        self.lock = threading.RLock()

    @property
    def path(self) -> Path:
        return self.folder / RECORD_FILE

    def save(self) -> None:
        with self.lock:
            self.data["LastModifiedTime"] = self.now()
            write_json_atomic(self.path, self.data)

    def step(self, name: str) -> dict[str, Any]:
        """The step's entry (created Starting on first use)."""
        with self.lock:
            for rec in self.data["Steps"]:
                if rec["StepName"] == name:
                    return rec
            spec = self.steps[name]
            rec = {
                "StepName": name,
                "StepDisplayName": spec.raw.get("DisplayName", name),
                "StepType": spec.type,
                "StepStatus": "Starting",
                "StartTime": self.now(),
                "Metadata": {},
            }
            self.data["Steps"].append(rec)
            return rec

    def set_step(self, name: str, **fields: Any) -> dict[str, Any]:
        """Update the step's entry (``EndTime`` when its status becomes terminal), save; returns a copy."""
        with self.lock:
            rec = self.step(name)
            rec.update(fields)
            if fields.get("StepStatus") in TERMINAL:
                rec["EndTime"] = self.now()
            self.save()
            return dict(rec)


def new_record(pipeline: Mapping[str, Any], execution_id: str, *, display_name: str | None,
               parameters: list[dict[str, str]], created: str) -> dict[str, Any]:
    """A new execution's record, Executing, run by this process."""
    return {
        "PipelineName": pipeline["PipelineName"],
        "PipelineArn": pipeline["PipelineArn"],
        "PipelineExecutionId": execution_id,
        "PipelineExecutionArn": f"{pipeline['PipelineArn']}/execution/{execution_id}",
        "PipelineExecutionDisplayName": display_name or f"execution-{execution_id}",
        "PipelineExecutionStatus": "Executing",
        "CreationTime": created,
        "LastModifiedTime": created,
        "Parameters": parameters,
        "Executor": supervisor.ProcessRef.current().to_json(),
        "Steps": [],
        "NotExecuted": [],
    }


def list_executions(state: StateDir, pipeline_name: str) -> list[dict[str, Any]]:
    """Every recorded execution of a pipeline, newest first (stale ones reconciled)."""
    reconcile(state, pipeline_name)
    folder = executions_dir(state, pipeline_name)
    records = []
    if folder.is_dir():
        for path in folder.glob(f"*/{RECORD_FILE}"):
            with contextlib.suppress(OSError, ValueError):
                records.append(json.loads(path.read_text(encoding="utf-8")))
    records.sort(key=lambda r: r.get("CreationTime", ""), reverse=True)
    return records


def describe_execution(state: StateDir, pipeline_name: str, execution_id: str) -> dict[str, Any]:
    """One execution's record (reconciled first). Raises :class:`NotDeployedError` when there is none."""
    reconcile(state, pipeline_name)
    path = execution_folder(state, pipeline_name, execution_id) / RECORD_FILE
    if not path.is_file():
        raise NotDeployedError(f"no execution {execution_id} of pipeline {pipeline_name} in {state.root}")
    return json.loads(path.read_text(encoding="utf-8"))


def reconcile(state: StateDir, pipeline_name: str) -> list[str]:
    """Mark executions whose executor process is gone as Failed. Returns their ids."""
    folder = executions_dir(state, pipeline_name)
    fixed: list[str] = []
    if not folder.is_dir():
        return fixed
    for path in folder.glob(f"*/{RECORD_FILE}"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("PipelineExecutionStatus") != "Executing":
            continue
        if supervisor.is_alive(executor_of(record)):
            continue
        reason = "the executor process ended before the execution finished (killed or crashed)"
        # It ended some time after its last record: that time is the best end time known (no clock needed).
        ended = record.get("LastModifiedTime") or record.get("CreationTime")
        for step in record.get("Steps", []):
            if step.get("StepStatus") not in TERMINAL:
                step["StepStatus"] = "Failed"
                step["FailureReason"] = reason
                step["EndTime"] = ended
        record["PipelineExecutionStatus"] = "Failed"
        record["FailureReason"] = reason
        record["EndTime"] = ended
        record.pop("Executor", None)
        record.pop("ExecutorPid", None)
        record.pop("ExecutorStartTime", None)
        write_json_atomic(path, record)
        fixed.append(record.get("PipelineExecutionId", path.parent.name))
    return fixed


def executor_of(record: Mapping[str, Any]) -> supervisor.ProcessRef | None:
    """The process running an execution (``Executor``; records written before it was kept: ``ExecutorPid``)."""
    if "Executor" in record:
        return supervisor.ProcessRef.from_json(record["Executor"])
    return supervisor.ProcessRef.from_json({"pid": record.get("ExecutorPid")})


def stop_running_executions(state: StateDir, pipeline_name: str, timeout: float = 60.0) -> list[str]:
    """Ask the executors of running executions to stop (SIGTERM) and wait until
    each records a terminal status (or its process is gone). Returns their ids."""
    reconcile(state, pipeline_name)
    running = [r for r in list_executions(state, pipeline_name) if r.get("PipelineExecutionStatus") == "Executing"]
    for record in running:
        supervisor.send_signal(executor_of(record), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = {r["PipelineExecutionId"] for r in running}
    while pending and time.monotonic() < deadline:
        time.sleep(0.2)
        reconcile(state, pipeline_name)
        for execution_id in list(pending):
            rec = describe_execution(state, pipeline_name, execution_id)
            if rec.get("PipelineExecutionStatus") in TERMINAL:
                pending.discard(execution_id)
    return [r["PipelineExecutionId"] for r in running]
