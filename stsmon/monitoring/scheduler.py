"""The local EventBridge Scheduler: one background process that runs the deployed schedules.

Deploying an ``AWS::Scheduler::Schedule`` (handler in
:mod:`stsmon.monitoring.handlers`) records it under
``scheduler/schedules/{name}.json`` and makes sure the scheduler process
runs; deleting the last schedule stops it. The process
(``python -m stsmon.monitoring.scheduler --state-dir DIR``) re-reads the
schedules every few seconds, and at each fire time of an ENABLED schedule
starts its target — a SageMaker pipeline, with the schedule's
``SageMakerPipelineParameters`` — through the local SageMaker API
(``start_pipeline_execution``), exactly as EventBridge Scheduler would start
it on AWS, then reads the monitoring result and the alarms
(:mod:`stsmon.monitoring.runs`) and records the run. Missed fire times
(the process was not running) are not made up, as on AWS.

Files (``scheduler/``): ``scheduler.json`` (pid, creation time, boot time, log path; :mod:`stsmon.supervisor`),
``scheduler.log``, ``schedules/*.json``, ``state.json`` (per schedule: next
and last fire time, last execution and status).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stscontracts import schedule

from .. import supervisor
from ..clock import Clock, SystemClock
from ..errors import StsmonError
from ..fileio import write_json_atomic
from ..state import StateDir

POLL_SECONDS = 5.0
LOG = logging.getLogger("stsmon.scheduler")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------- schedule records


def schedules_dir(state: StateDir) -> Path:
    return state.scheduler / "schedules"


def save_schedule(state: StateDir, record: dict[str, Any]) -> None:
    """Record a schedule: Name, Arn, ScheduleExpression, ScheduleExpressionTimezone, State,
    PipelineName, Parameters (name -> value), CreatedAt."""
    schedule.parse(record["ScheduleExpression"], record.get("ScheduleExpressionTimezone", "UTC"))
    write_json_atomic(schedules_dir(state) / f"{record['Name']}.json", record)


def delete_schedule(state: StateDir, name: str) -> None:
    (schedules_dir(state) / f"{name}.json").unlink(missing_ok=True)
    data = _read_json(state.scheduler / "state.json") or {}
    if name in data:
        data.pop(name)
        write_json_atomic(state.scheduler / "state.json", data)


def list_schedules(state: StateDir) -> list[dict[str, Any]]:
    folder = schedules_dir(state)
    if not folder.is_dir():
        return []
    records = [_read_json(p) for p in sorted(folder.glob("*.json"))]
    return [r for r in records if isinstance(r, dict)]


# ---------------------------------------------------------------------------- the process


def process_info(state: StateDir) -> dict[str, Any] | None:
    """``scheduler.json`` when its process is alive, else None."""
    info = _read_json(state.scheduler / "scheduler.json")
    if not supervisor.is_alive(supervisor.ProcessRef.from_json(info)):
        return None
    return info


def start(state: StateDir, *, python: str | None = None) -> dict[str, Any]:
    """Start the scheduler process unless it runs; returns its info (pid, creation time, log)."""
    running = process_info(state)
    if running:
        return running
    state.scheduler.mkdir(parents=True, exist_ok=True)
    log_path = state.scheduler / "scheduler.log"
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
    with open(log_path, "a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [python or sys.executable, "-m", "stsmon.monitoring.scheduler", "--state-dir", str(state.root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True, close_fds=True,
        )
    ref = supervisor.ProcessRef.of(proc.pid) or supervisor.ProcessRef(proc.pid)
    info = {**ref.to_json(), "log": str(log_path)}
    write_json_atomic(state.scheduler / "scheduler.json", info)
    return info


def stop(state: StateDir, timeout: float = 20.0) -> bool:
    """Stop the scheduler process (SIGTERM, then SIGKILL after ``timeout`` s). True if one was running."""
    info = process_info(state)
    path = state.scheduler / "scheduler.json"
    running = info is not None and supervisor.stop(supervisor.ProcessRef.from_json(info), timeout=timeout)
    path.unlink(missing_ok=True)
    return running


def ensure(state: StateDir) -> dict[str, Any] | None:
    """Run the process when an ENABLED schedule exists, stop it when none does."""
    if any(s.get("State", "ENABLED") == "ENABLED" for s in list_schedules(state)):
        return start(state)
    stop(state)
    return None


def status(state: StateDir, now: datetime) -> dict[str, Any]:
    """Process and schedules, with the next fire time of each (from ``now`` where none is booked)."""
    info = process_info(state)
    fired = _read_json(state.scheduler / "state.json") or {}
    rows = []
    for record in list_schedules(state):
        parsed = schedule.parse(record["ScheduleExpression"], record.get("ScheduleExpressionTimezone", "UTC"))
        mine = fired.get(record["Name"], {})
        upcoming = _parse(mine.get("next")) or parsed.next_after(now, anchor=_parse(record.get("CreatedAt")))
        rows.append({
            "name": record["Name"], "expression": record["ScheduleExpression"], "state": record.get("State", "ENABLED"),
            "pipeline": record.get("PipelineName"), "next": _iso(upcoming) if record.get("State", "ENABLED") == "ENABLED" else None,
            "last": mine.get("last"), "last_execution": mine.get("last_execution"), "last_status": mine.get("last_status"),
        })
    return {"running": info is not None, "process": info, "log": str(state.scheduler / "scheduler.log"), "schedules": rows}


class Scheduler:
    """The loop of the scheduler process; :meth:`run_due` is one tick.

    Every time it uses comes from ``clock`` (the process's entry point passes
    the wall clock, tests a clock far from today): the fire times, the
    execution it starts, and the next fire time after a run that took a while.
    """

    def __init__(self, state: StateDir, *, clock: Clock, runner: Callable[..., Any] | None = None) -> None:
        self.state = state
        self.clock = clock
        self.runner = runner or self._run_pipeline
        self.started = clock.now()

    def _run_pipeline(self, state: StateDir, parameters: dict[str, str], *, pipeline: str, trigger: str) -> Any:
        """Start the pipeline through the local SageMaker API (as EventBridge Scheduler calls
        StartPipelineExecution on AWS), follow it, read its result and record it."""
        from stscontracts.config import Config

        from ..clients import make_clients
        from . import runs

        with make_clients("local", config=Config(), state=state, clock=self.clock) as clients:
            run = runs.run_now(clients, pipeline, parameters, trigger=trigger, alarm_prefixes=("",), sleep=time.sleep)
            runs.write_run_record(state, run, target="local", trigger=trigger)
        return run

    def run_due(self) -> list[dict[str, Any]]:
        """Fire every ENABLED schedule whose time has come (by the clock); returns what was fired."""
        now = self.clock.now()
        fired_now = []
        book = _read_json(self.state.scheduler / "state.json") or {}
        names = set()
        for record in list_schedules(self.state):
            name = record["Name"]
            names.add(name)
            if record.get("State", "ENABLED") != "ENABLED":
                book.pop(name, None)
                continue
            try:
                parsed = schedule.parse(record["ScheduleExpression"], record.get("ScheduleExpressionTimezone", "UTC"))
            except (StsmonError, schedule.ScheduleError) as exc:
                LOG.error("schedule %s: %s", name, exc.message)
                continue
            mine = book.setdefault(name, {})
            anchor = _parse(record.get("CreatedAt")) or self.started
            due = _parse(mine.get("next"))
            if due is None or mine.get("expression") != record["ScheduleExpression"]:
                due = parsed.next_after(now, anchor=anchor)  # new or changed: from now on, no catch-up
                mine.update(next=_iso(due), expression=record["ScheduleExpression"])
            if due is None or now < due:
                continue
            LOG.info("schedule %s (%s): starting pipeline %s", name, record["ScheduleExpression"], record.get("PipelineName"))
            entry = {"schedule": name, "time": _iso(now), "status": None, "execution": None}
            try:
                run = self.runner(self.state, dict(record.get("Parameters") or {}),
                                  pipeline=record["PipelineName"], trigger=f"schedule:{name}")
                entry["execution"] = run.execution.get("PipelineExecutionId")
                entry["status"] = run.status
                LOG.info("schedule %s: execution %s %s, monitor %s%s", name, entry["execution"],
                         run.execution.get("PipelineExecutionStatus"), run.status,
                         f" ({run.failure_reason})" if run.failure_reason else "")
                for alarm in getattr(run, "alarms", []):
                    if alarm.get("changed"):
                        LOG.warning("alarm %s: %s -> %s: %s", alarm["name"], alarm["previous"], alarm["state"], alarm["reason"])
            except StsmonError as exc:
                entry["status"] = "Failed"
                LOG.error("schedule %s: could not start pipeline %s: %s", name, record.get("PipelineName"), exc.message)
            mine.update(last=_iso(now), last_execution=entry["execution"], last_status=entry["status"],
                        # after the run (which takes time): the next fire time from the clock's now, no catch-up
                        next=_iso(parsed.next_after(max(now, self.clock.now()), anchor=anchor)))
            fired_now.append(entry)
        for gone in set(book) - names:
            book.pop(gone)
        write_json_atomic(self.state.scheduler / "state.json", book)
        return fired_now

    def seconds_to_next(self, now: datetime) -> float:
        book = _read_json(self.state.scheduler / "state.json") or {}
        times = [_parse(v.get("next")) for v in book.values() if v.get("next")]
        if not times:
            return POLL_SECONDS
        return max(0.0, min(POLL_SECONDS, min((t - now).total_seconds() for t in times)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stsmon.monitoring.scheduler")
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    state = StateDir(args.state_dir.resolve())

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    clock = SystemClock()  # the process's entry point: the one place it reads the wall clock
    scheduler = Scheduler(state, clock=clock)
    LOG.info("scheduler started (pid %d, state %s)", os.getpid(), state.root)
    try:
        while True:
            scheduler.run_due()
            time.sleep(max(0.2, scheduler.seconds_to_next(clock.now())))
    except KeyboardInterrupt:
        LOG.info("scheduler stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover - the background process
    sys.exit(main())
