"""The processes the local runtime starts and finds again later: one rule, on psutil.

A background process (the endpoint server, the scheduler, a pipeline
executor) is recorded in a JSON file when it starts and found again by
later commands. A pid alone does not name a process — the kernel reuses
pids — so a record holds a :class:`ProcessRef`: the pid and the process's
creation time as psutil reports it (``psutil.Process.create_time()``,
seconds since the epoch), plus the machine's boot time then
(``psutil.boot_time()``). That is psutil's own notion of process identity
(pid + creation time; see ``psutil.Process.is_running``).

- :func:`is_alive` — the recorded process still runs: the pid exists, it is
  not a zombie, and it was created when the record says. The creation time
  matches either as is or, when the wall clock was stepped since (which
  moves both ``create_time`` and ``boot_time`` on Linux), relative to the
  boot time — so a clock step never makes a live process look gone, and a
  new process that got the old pid never looks like the old one. A record
  without a creation time (written before it was kept) is matched by pid.
- :func:`send_signal` — signal the recorded process, only if it is that process.
- :func:`stop` — SIGTERM, wait up to ``timeout`` seconds, then SIGKILL (to
  its process group when asked); reaps it when it is our child. Only
  :func:`stop` and :func:`reap` collect a child's exit status: looking
  (:func:`is_alive`) leaves it to whoever holds a Popen for it.
- :func:`stop_child` — the same escalation for a child we hold a
  :class:`subprocess.Popen` for (Popen reaps it).
- :func:`reap` — collect a zombie child of ours, if it is one.
- :func:`child_dies_with_parent` — for a child that must not outlive its
  parent (a pipeline step under its executor).

Nothing here reads /proc directly: psutil does, on Linux, and its
equivalents elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

#: psutil's creation times have a 0.01 s resolution on Linux; two readings of one process agree within this.
CREATE_TIME_TOLERANCE = 0.05
#: How often :func:`stop` looks whether the process has gone (seconds).
POLL_SECONDS = 0.05
#: After SIGKILL, how long :func:`stop` waits for the process to disappear (seconds).
KILL_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ProcessRef:
    """A process by pid and creation time (``create_time``/``boot_time``: None when unknown)."""

    pid: int
    create_time: float | None = None
    boot_time: float | None = None

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        """The process that has ``pid`` now (None when there is none)."""
        try:
            created = psutil.Process(pid).create_time()
        except (psutil.NoSuchProcess, ValueError):
            return None
        return cls(pid, created, psutil.boot_time())

    @classmethod
    def current(cls) -> ProcessRef:
        """This process."""
        ref = cls.of(os.getpid())
        assert ref is not None  # this process exists
        return ref

    def to_json(self) -> dict[str, Any]:
        """``{"pid", "create_time", "boot_time"}``, the fields a record keeps."""
        return {"pid": self.pid, "create_time": self.create_time, "boot_time": self.boot_time}

    @classmethod
    def from_json(cls, data: Any) -> ProcessRef | None:
        """The reference in a record's ``pid``/``create_time``/``boot_time`` (None when it has no usable pid)."""
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        created, booted = data.get("create_time"), data.get("boot_time")
        return cls(
            pid,
            float(created) if isinstance(created, (int, float)) else None,
            float(booted) if isinstance(booted, (int, float)) else None,
        )

    def matches(self, process: psutil.Process) -> bool:
        """``process`` (same pid) is the one this reference was taken of."""
        if self.create_time is None:
            return True
        try:
            created = process.create_time()
        except psutil.NoSuchProcess:
            return False
        if abs(created - self.create_time) <= CREATE_TIME_TOLERANCE:
            return True
        if self.boot_time is None:
            return False
        # The wall clock was stepped: compare the times since boot, which do not move.
        return abs((created - psutil.boot_time()) - (self.create_time - self.boot_time)) <= CREATE_TIME_TOLERANCE


def _find(ref: ProcessRef, *, reap_zombie: bool = False) -> psutil.Process | None:
    """The running, non-zombie process ``ref`` names, else None (its zombie reaped when
    ``reap_zombie`` and it is our child)."""
    try:
        process = psutil.Process(ref.pid)
        if not ref.matches(process):
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            if reap_zombie:
                reap(ref.pid)
            return None
    except (psutil.NoSuchProcess, ValueError):
        return None
    except psutil.AccessDenied:
        return None  # another user's process: not one the runtime started (ours run as us)
    return process


def is_alive(ref: ProcessRef | None) -> bool:
    """The recorded process still runs (see the module's docstring for the rule)."""
    return ref is not None and _find(ref) is not None


def send_signal(ref: ProcessRef | None, sig: int) -> bool:
    """Send ``sig`` to the recorded process if it still runs; False when it does not."""
    process = _find(ref) if ref is not None else None
    if process is None:
        return False
    try:
        process.send_signal(sig)  # psutil checks the pid was not reused in between
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False
    return True


def stop(ref: ProcessRef | None, *, timeout: float = 10.0, group: bool = False) -> bool:
    """Stop the recorded process: SIGTERM, wait up to ``timeout`` seconds for it to go,
    then SIGKILL — to its whole process group when ``group`` (a server started in a
    session of its own, with forked workers) — and wait for it to go. Reaps it when it
    is our child. Returns False when it was not running.
    """
    if not send_signal(ref, signal.SIGTERM):
        return False
    assert ref is not None
    if _wait_gone(ref, timeout):
        return True
    process = _find(ref)
    if process is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            if group:
                os.killpg(os.getpgid(ref.pid), signal.SIGKILL)
            else:
                process.kill()
    _wait_gone(ref, KILL_WAIT_SECONDS)
    return True


def stop_child(proc: subprocess.Popen[Any] | None, *, timeout: float = 10.0) -> None:
    """Stop a child we hold a Popen for: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a finished child of ours (else nothing)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(ref: ProcessRef, timeout: float) -> bool:
    """Wait until ``ref`` is gone (reaping it when it is our child); False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if _find(ref, reap_zombie=True) is None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def child_dies_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets SIGKILL when its
    parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``), so nothing runs on unsupervised
    after a crash, and it gets a process group of its own. None elsewhere (no such call)."""
    if not sys.platform.startswith("linux"):
        return None
    return _pdeathsig


def _pdeathsig() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    os.setpgrp()
