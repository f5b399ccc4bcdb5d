"""The process supervisor: identity by pid + creation time, liveness, stop with escalation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from stsmon import supervisor
from stsmon.supervisor import ProcessRef

SLEEPER = "import time; print('ready', flush=True); time.sleep(60)"
#: Ignores SIGTERM (as a hung server would), says so, then sleeps.
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")


def spawn(code: str, **kw) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **kw)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def sleeper():
    proc = spawn(SLEEPER)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_running_process_is_alive_and_a_killed_one_is_dead_even_before_it_is_reaped(sleeper):
    ref = ProcessRef.of(sleeper.pid)
    assert ref is not None and ref.create_time is not None
    assert supervisor.is_alive(ref)
    os.kill(sleeper.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervisor.is_alive(ref) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not supervisor.is_alive(ref)  # a zombie is dead
    # Looking did not take the exit status from the Popen that owns the child.
    assert sleeper.wait(5) == -signal.SIGKILL
    assert not supervisor.is_alive(ref)  # and gone for good


def test_a_reused_pid_is_not_the_recorded_process(sleeper):
    """A record whose creation time differs is another process that had the pid:
    not alive, and it gets no signal."""
    now = ProcessRef.of(sleeper.pid)
    stale = ProcessRef(sleeper.pid, now.create_time - 3600.0, now.boot_time)
    assert not supervisor.is_alive(stale)
    assert supervisor.send_signal(stale, signal.SIGKILL) is False
    assert supervisor.stop(stale, timeout=0.1) is False
    assert sleeper.poll() is None  # the process that has the pid now was left alone


def test_a_wall_clock_step_does_not_make_a_live_process_look_gone(sleeper):
    """Stepping the clock moves psutil's create_time and boot_time together (Linux): the time
    since boot is what stays, and it still matches."""
    now = ProcessRef.of(sleeper.pid)
    recorded_before_step = ProcessRef(sleeper.pid, now.create_time + 7200.0, now.boot_time + 7200.0)
    assert supervisor.is_alive(recorded_before_step)


def test_records_round_trip_and_old_records_are_matched_by_pid(sleeper):
    ref = ProcessRef.of(sleeper.pid)
    assert ProcessRef.from_json(ref.to_json()) == ref
    assert ProcessRef.from_json({"pid": sleeper.pid}) == ProcessRef(sleeper.pid)
    assert supervisor.is_alive(ProcessRef.from_json({"pid": sleeper.pid, "start_time": "123"}))
    for bad in (None, {}, {"pid": "12"}, {"pid": 0}, {"pid": True}, []):
        assert ProcessRef.from_json(bad) is None
    assert not supervisor.is_alive(None)


def test_stop_ends_a_process_that_honours_sigterm_without_escalating(sleeper, monkeypatch):
    statuses = record_waitpid(monkeypatch)
    ref = ProcessRef.of(sleeper.pid)
    assert supervisor.stop(ref, timeout=10) is True
    assert not supervisor.is_alive(ref)
    assert [os.WTERMSIG(s) for p, s in statuses if p == sleeper.pid] == [signal.SIGTERM]


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(monkeypatch):
    proc = spawn(STUBBORN)
    try:
        statuses = record_waitpid(monkeypatch)
        ref = ProcessRef.of(proc.pid)
        started = time.monotonic()
        assert supervisor.stop(ref, timeout=0.3) is True
        assert time.monotonic() - started >= 0.3  # it was given the grace period first
        assert not supervisor.is_alive(ref)
        assert [os.WTERMSIG(s) for p, s in statuses if p == proc.pid] == [signal.SIGKILL]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stop_of_a_group_kills_its_forked_children_too():
    """A server started in a session of its own (the endpoint) takes its workers with it."""
    code = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); pid = os.fork()\n"
            "if pid: print(pid, flush=True); print('ready', flush=True)\n"
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        worker = int(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "ready"
        worker_ref = ProcessRef.of(worker)
        assert supervisor.stop(ProcessRef.of(proc.pid), timeout=0.2, group=True)
        deadline = time.monotonic() + 10
        while supervisor.is_alive(worker_ref) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not supervisor.is_alive(worker_ref)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_stop_child_escalates_for_a_popen_child():
    proc = spawn(STUBBORN)
    supervisor.stop_child(proc, timeout=0.2)
    assert proc.wait(5) == -signal.SIGKILL


def record_waitpid(monkeypatch) -> list[tuple[int, int]]:
    """Keep the exit statuses the supervisor collects (how the process ended)."""
    seen: list[tuple[int, int]] = []
    real = os.waitpid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        got, status = real(pid, options)
        if got:
            seen.append((got, status))
        return got, status

    monkeypatch.setattr(os, "waitpid", waitpid)
    return seen


# -- the three users read their records by the one rule ---------------------------------------------


@pytest.fixture
def stsmon_like():
    """A live process whose command line names stsmon (what the endpoint's old check looked for)."""
    proc = spawn(SLEEPER + "  # stsmon.endpoint serve")
    yield proc
    proc.kill()
    proc.wait()


def records_of(proc, state):
    """The endpoint, scheduler and execution records naming ``proc`` -> a reader that says whether each
    sees its process running, given the creation time the record holds."""
    from stsmon.endpoint.process import endpoint_paths, read_record
    from stsmon.fileio import write_json_atomic
    from stsmon.localcloud.executions import reconcile
    from stsmon.monitoring.scheduler import process_info

    def running(ref: ProcessRef) -> dict[str, bool]:
        write_json_atomic(endpoint_paths(state, "ep").record, {"status": "InService", **ref.to_json()})
        write_json_atomic(state.scheduler / "scheduler.json", {**ref.to_json(), "log": "x"})
        write_json_atomic(state.executions / "p" / "e1" / "execution.json", {
            "PipelineExecutionId": "e1", "PipelineExecutionStatus": "Executing", "Steps": [],
            "CreationTime": "2033-05-17T12:00:00.000+00:00", "Executor": ref.to_json()})
        return {
            "endpoint": read_record(state, "ep")["running"],
            "scheduler": process_info(state) is not None,
            "executor": reconcile(state, "p") == [],
        }

    return running


def test_endpoint_scheduler_and_executor_records_tell_a_reused_pid_from_their_process(stsmon_like, tmp_path):
    """Before the supervisor the endpoint took any live process with "stsmon" in its command line
    for its server; now all three records are matched by pid + creation time."""
    from stsmon.state import StateDir

    running = records_of(stsmon_like, StateDir(tmp_path))
    ref = ProcessRef.of(stsmon_like.pid)
    assert running(ref) == {"endpoint": True, "scheduler": True, "executor": True}
    reused = ProcessRef(ref.pid, ref.create_time - 3600.0, ref.boot_time)
    assert running(reused) == {"endpoint": False, "scheduler": False, "executor": False}
