"""The endpoint server: a master process and its pre-forked workers.

The master binds the listening socket (loopback unless told otherwise), forks
``workers`` processes (default: one per core) that share it, and supervises
them. It never imports the model: each worker loads it with the package's
``model_fn`` (:mod:`stsmon.endpoint.model`) and serves with
:class:`stsmon.endpoint.worker.Worker`.

Signals to the master:

- ``SIGTERM``/``SIGINT``: drain and stop. Workers stop accepting, answer every
  request they have received, write and close their capture files, exit.
- ``SIGHUP``: re-read the spec file and swap models without dropping a
  request: a new generation of workers loads the new model; once all of them
  answer, the old generation drains (same listening socket, so no connection
  is refused meanwhile). If the new model fails to load, the old one keeps
  serving and the record says why.

A worker that dies unexpectedly is replaced (with back-off if it keeps
dying). The master keeps ``endpoint.json`` (status, URL, pids, model, capture)
up to date; see :mod:`stsmon.endpoint.process` for starting it in the
background.
"""

from __future__ import annotations

import errno
import mmap
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from stscontracts import names

from .. import supervisor
from ..clock import Clock, iso_seconds
from ..fileio import write_json_atomic
from .capture import CaptureSettings, CaptureWriter
from .worker import WorkerLimits

log = logging.getLogger("stsmon.endpoint.server")

#: How long a worker may take to load the model before the start (or swap) fails.
LOAD_TIMEOUT = 300.0
#: Thread-pool sizes of numeric libraries: a worker takes them from the model's
#: container environment only, as the container does (none inherited from stsmon's).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_THREAD_LIMIT",
               "OMP_DYNAMIC", "GOTO_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")
#: Spec keys of earlier versions, ignored when read back.
_RETIRED_KEYS = ("threads_per_worker",)


@dataclass(frozen=True)
class ServerSpec:
    """Everything the server needs; JSON round-trips (:meth:`to_json`/:meth:`from_json`).

    ``model_dir``: an extracted model folder (``model.joblib``, ``code/``...).
    ``model_env``: the container environment (``SAGEMAKER_PROGRAM``,
    ``SAGEMAKER_SUBMIT_DIRECTORY``, ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``).
    ``workers``: worker processes, 0 = one per core (numeric thread pools
    come from ``model_env``, as in the container). ``capture``: None = no
    data capture. ``record_path``: where the master writes ``endpoint.json``;
    ``stats_dir``: per-worker capture counters. ``info``: free-form facts kept
    in the record (package ARN, model data URL, config names...).
    """

    endpoint_name: str
    model_dir: str
    model_env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0
    capture: CaptureSettings | None = None
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    variant: str = names.VARIANT
    record_path: str | None = None
    stats_dir: str | None = None
    region: str = "us-east-1"
    account: str = "000000000000"
    info: dict[str, Any] = field(default_factory=dict)
    #: When ``port`` is only the default (not asked for) and is taken at bind time, take a free one.
    port_fallback: bool = False

    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["capture"] = self.capture.to_json() if self.capture else None
        data["limits"] = {f.name: getattr(self.limits, f.name) for f in fields(self.limits)}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerSpec:
        data = {k: v for k, v in data.items() if k not in _RETIRED_KEYS}
        capture = data.pop("capture", None)
        limits = data.pop("limits", None) or {}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown server spec keys: {sorted(unknown)}")
        return cls(
            capture=CaptureSettings.from_json(capture) if capture else None,
            limits=WorkerLimits(**limits),
            **data,
        )

    def with_changes(self, **changes: Any) -> ServerSpec:
        return replace(self, **changes)


def endpoint_url(host: str, port: int) -> str:
    """The URL clients use (a wildcard bind is reached through loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _type, _proto, _canon, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


class _WorkerProc:
    __slots__ = ("pid", "generation", "index", "ready_fd", "ready", "started", "buf")

    def __init__(self, pid: int, generation: int, index: int, ready_fd: int) -> None:
        self.pid = pid
        self.generation = generation
        self.index = index
        self.ready_fd = ready_fd
        self.ready = False
        self.started = time.monotonic()
        self.buf = b""


class StartError(Exception):
    """The server could not start (bind failed, model failed to load)."""


class Master:
    """Runs the server described by ``spec`` until stopped (:meth:`run`).

    ``spec_file``: where SIGHUP re-reads the spec from (None: reload = same spec).
    ``clock``: the time of the endpoint's records and of each request's arrival (capture's
    ``inferenceTime``); the process's entry point passes the wall clock.
    """

    def __init__(self, spec: ServerSpec, spec_file: Path | None = None, *, clock: Clock) -> None:
        self.spec = spec
        self.clock = clock
        self.spec_file = spec_file
        self.sock: socket.socket | None = None
        self.port = spec.port
        self.workers: dict[int, _WorkerProc] = {}
        self.generation = 0
        # Live connection counts of the workers, shared with them (forked): see ConnectionBalance.
        self.balance_memory = ConnectionBalance.allocate()
        self.stopping = False
        self._reload = False
        self._wake_r = self._wake_w = -1
        self._crashes = 0
        self._respawn_at: list[tuple[float, int]] = []  # (when, index)
        self.record: dict[str, Any] = {}

    # -- entry ---------------------------------------------------------------

    def run(self, *, on_ready=None) -> int:
        """Serve until SIGTERM/SIGINT. Returns the exit code (0 after a clean stop)."""
        self._install_signals()
        try:
            try:
                try:
                    self.sock = bind(self.spec.host, self.spec.port)
                except OSError as exc:
                    if not (self.spec.port_fallback and exc.errno == errno.EADDRINUSE):
                        raise
                    log.warning("port %d is in use; taking a free port", self.spec.port)
                    self.sock = bind(self.spec.host, 0)
            except OSError as exc:
                reason = _bind_message(self.spec.host, self.spec.port, exc)
                self._write_record("Failed", failure_reason=reason)
                log.error("%s", reason)
                return 2
            self.port = self.sock.getsockname()[1]
            self._write_record("Creating")
            try:
                self._start_generation(self.spec)
            except StartError as exc:
                self._write_record("Failed", failure_reason=str(exc))
                log.error("endpoint %s failed to start: %s", self.spec.endpoint_name, exc)
                return 3
            self._write_record("InService")
            log.info("endpoint %s in service at %s (%d worker(s), pid %d)", self.spec.endpoint_name,
                     endpoint_url(self.spec.host, self.port), len(self.workers), os.getpid())
            if on_ready is not None:
                on_ready(self.record)
            self._supervise()
            return 0
        finally:
            self._stop_all()
            if self.record.get("status") in ("InService", "Updating", "Creating"):
                self._write_record("Stopped")

    # -- signals ------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def _on_stop(self, signum, frame) -> None:
        self.stopping = True

    def _on_hup(self, signum, frame) -> None:
        self._reload = True

    # -- workers ----------------------------------------------------------------

    def _spawn(self, spec: ServerSpec, generation: int, index: int) -> _WorkerProc:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                os.close(r)
                code = _worker_main(self, spec, index, w)
            except BaseException:
                logging.getLogger("stsmon.endpoint.worker").exception("worker crashed")
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(w)
        os.set_blocking(r, False)
        proc = _WorkerProc(pid, generation, index, r)
        self.workers[pid] = proc
        return proc

    def _start_generation(self, spec: ServerSpec) -> None:
        """Fork a full set of workers for ``spec`` and wait until all are ready.

        Raises :class:`StartError` (after killing the new workers) if one fails.
        """
        self.generation += 1
        gen = self.generation
        ConnectionBalance(self.balance_memory, gen, 0, spec.worker_count()).reset()
        procs = [self._spawn(spec, gen, i) for i in range(spec.worker_count())]
        deadline = time.monotonic() + LOAD_TIMEOUT
        while not all(p.ready for p in procs):
            if self.stopping:
                raise StartError("stopped while starting")
            failed = self._poll_ready(procs, deadline - time.monotonic())
            if failed or time.monotonic() > deadline:
                for p in procs:
                    _kill(p.pid, signal.SIGKILL)
                for p in procs:
                    _reap(p.pid)
                    self._forget(p.pid)
                raise StartError(failed or f"workers did not load the model within {LOAD_TIMEOUT:g} s")

    def _poll_ready(self, procs: list[_WorkerProc], timeout: float) -> str | None:
        """Wait for readiness messages; return a worker's failure message if one failed."""
        waiting = {p.ready_fd: p for p in procs if not p.ready}
        try:
            readable, _, _ = select.select([*waiting, self._wake_r], [], [], max(0.0, min(timeout, 1.0)))
        except InterruptedError:
            readable = []
        for fd in readable:
            if fd == self._wake_r:
                _drain(self._wake_r)
                continue
            p = waiting[fd]
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            p.buf += chunk
            if p.buf.startswith(b"ready\n"):
                p.ready = True
                os.close(fd)
                p.ready_fd = -1
            elif not chunk or p.buf.endswith(b"\n\x00"):
                message = p.buf.rstrip(b"\x00").decode("utf-8", "replace").strip()
                return message.removeprefix("error: ") or f"worker {p.pid} exited while loading the model"
        # A worker that died without a word.
        for p in procs:
            if not p.ready:
                pid, status = _waitpid(p.pid)
                if pid:
                    return f"worker {p.pid} exited ({_describe(status)}) while loading the model"
        return None

    def _forget(self, pid: int) -> None:
        p = self.workers.pop(pid, None)
        if p is not None and p.ready_fd >= 0:
            os.close(p.ready_fd)
            p.ready_fd = -1

    def _supervise(self) -> None:
        while not self.stopping:
            try:
                select.select([self._wake_r], [], [], 1.0)
            except InterruptedError:
                pass
            _drain(self._wake_r)
            self._reap_children()
            if self._reload and not self.stopping:
                self._reload = False
                self._swap()
            self._respawn_due()

    def _reap_children(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            p = self.workers.get(pid)
            self._forget(pid)
            if p is None or self.stopping:
                continue
            if p.generation != self.generation:
                continue  # an old generation finished draining
            log.error("worker %d exited unexpectedly (%s); replacing it", pid, _describe(status))
            quick = time.monotonic() - p.started < 10
            self._crashes = self._crashes + 1 if quick else 0
            delay = min(30.0, 0.5 * (2 ** max(0, self._crashes - 1))) if quick else 0.0
            self._respawn_at.append((time.monotonic() + delay, p.index))

    def _respawn_due(self) -> None:
        now = time.monotonic()
        due = [(t, i) for t, i in self._respawn_at if t <= now]
        self._respawn_at = [(t, i) for t, i in self._respawn_at if t > now]
        for _t, index in due:
            proc = self._spawn(self.spec, self.generation, index)
            failed = None
            deadline = time.monotonic() + LOAD_TIMEOUT
            while not proc.ready and not failed and time.monotonic() < deadline and not self.stopping:
                failed = self._poll_ready([proc], deadline - time.monotonic())
            if not proc.ready:
                log.error("replacement worker failed: %s", failed or "timeout")
                _kill(proc.pid, signal.SIGKILL)
                _reap(proc.pid)
                self._forget(proc.pid)
                self._respawn_at.append((time.monotonic() + 5.0, index))
        if due:
            self._write_record(self.record.get("status", "InService"))

    def _swap(self) -> None:
        """SIGHUP: serve the spec file's (new) model with a new generation of workers."""
        count = int(self.record.get("reload_count", 0)) + 1
        if self.spec_file is not None:
            try:
                new_spec = ServerSpec.from_json(json.loads(Path(self.spec_file).read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.error("reload: cannot read %s: %s", self.spec_file, exc)
                self._write_record("InService", last_update_error=f"cannot read {self.spec_file}: {exc}",
                                   reload_count=count)
                return
        else:
            new_spec = self.spec
        if (new_spec.host, new_spec.port) != (self.spec.host, self.spec.port) and new_spec.port != 0:
            log.warning("reload: host/port changes need a restart; keeping %s:%d", self.spec.host, self.port)
        new_spec = new_spec.with_changes(host=self.spec.host, port=self.port)
        old = [p.pid for p in self.workers.values()]
        self._write_record("Updating")
        log.info("reload: starting generation %d with model %s", self.generation + 1, new_spec.model_dir)
        try:
            self._start_generation(new_spec)
        except StartError as exc:
            self.generation -= 1  # the failed generation's workers are gone
            log.error("reload failed, the previous model keeps serving: %s", exc)
            self._write_record("InService", last_update_error=str(exc), reload_count=count)
            return
        self.spec = new_spec
        for pid in old:
            _kill(pid, signal.SIGTERM)  # drain; reaped by _reap_children
        self._write_record("InService", last_update_error=None, reload_count=count)
        log.info("reload: generation %d in service", self.generation)

    def _stop_all(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        pids = list(self.workers)
        for pid in pids:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.spec.limits.drain_timeout + 5
        for pid in pids:
            while time.monotonic() < deadline:
                got, _status = _waitpid(pid)
                if got:
                    break
                time.sleep(0.02)
            else:
                log.warning("worker %d did not drain in time; killing it", pid)
                _kill(pid, signal.SIGKILL)
                _reap(pid)
            self._forget(pid)

    # -- the record --------------------------------------------------------------

    def _write_record(self, status: str, **extra: Any) -> None:
        spec = self.spec
        record = dict(self.record)
        record.update({
            "endpoint_name": spec.endpoint_name,
            "status": status,
            "url": endpoint_url(spec.host, self.port) if self.port else None,
            "host": spec.host,
            "port": self.port,
            **supervisor.ProcessRef.current().to_json(),  # pid, create_time, boot_time: how others find this process
            "worker_pids": sorted(p.pid for p in self.workers.values() if p.generation == self.generation),
            "generation": self.generation,
            "variant": spec.variant,
            "model_dir": spec.model_dir,
            "capture": spec.capture.to_json() if spec.capture else None,
            "limits": spec.to_json()["limits"],
            "info": spec.info,
            "updated_at": iso_seconds(self.clock.now()),
        })
        record.setdefault("started_at", record["updated_at"])
        record.update(extra)
        self.record = record
        if spec.record_path:
            write_json_atomic(Path(spec.record_path), record)


def _worker_main(master: Master, spec: ServerSpec, index: int, ready_w: int) -> int:
    """The body of a forked worker. Returns its exit code."""
    from .model import InferenceHandler, ModelLoadError, default_accept
    from .worker import Worker

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    os.close(master._wake_r)
    os.close(master._wake_w)
    for p in list(master.workers.values()):
        if p.ready_fd >= 0:
            os.close(p.ready_fd)
    sock = master.sock
    # The container environment of the model (SAGEMAKER_PROGRAM, OMP_NUM_THREADS ...),
    # as in the real container. Numeric thread settings come from it alone: one
    # inherited from whoever started stsmon would hide what the package does on
    # AWS (one gunicorn worker per vCPU there, each with the pools the package sets).
    for var in THREAD_VARS:
        os.environ.pop(var, None)
    os.environ.update(spec.model_env)
    try:
        handler = InferenceHandler.load(Path(spec.model_dir), spec.model_env, max_batch=spec.limits.max_batch)
    except ModelLoadError as exc:
        _tell(ready_w, f"error: {exc.message}\n\x00")
        return 3
    except Exception as exc:
        _tell(ready_w, f"error: loading the model failed: {type(exc).__name__}: {exc}\n\x00")
        return 3
    capture = None
    if spec.capture is not None:
        stats = Path(spec.stats_dir) / f"worker-{index}.json" if spec.stats_dir else None
        capture = CaptureWriter(spec.capture, spec.endpoint_name, stats_path=stats).start()
    worker = Worker(
        sock,
        handler,
        balance=ConnectionBalance(master.balance_memory, master.generation, index, spec.worker_count()),
        endpoint_name=spec.endpoint_name,
        variant=spec.variant,
        limits=spec.limits,
        capture=capture,
        sampling_percentage=spec.capture.sampling_percentage if spec.capture else 0.0,
        default_accept=default_accept(spec.model_env),
        region=spec.region,
        account=spec.account,
        clock=master.clock,
    )
    _tell(ready_w, "ready\n")
    os.close(ready_w)
    worker.run()
    return 0


class ConnectionBalance:
    """Keeps keep-alive connections spread evenly over a generation's workers.

    The workers share one listening socket, and the kernel hands a new
    connection to whichever worker accepts first — often the same one, so 8
    clients could all land on one worker and the other core idle (measured:
    splits of 8/0, 7/1 and 6/2 in five tries). Each worker publishes its live
    connection count in memory shared by the master before forking; a worker
    accepts only while it has no more connections than the least loaded
    sibling (see ``Worker._accept``), with a short fallback so a busy sibling
    never leaves a connection waiting.
    """

    SLOTS = 64  # workers per generation
    _FORMAT = "i"

    def __init__(self, memory: mmap.mmap, generation: int, index: int, count: int) -> None:
        self.counts = memoryview(memory).cast(self._FORMAT)
        self.base = (generation % 2) * self.SLOTS  # two generations overlap during a model swap
        self.index = index
        self.count = min(count, self.SLOTS)

    @classmethod
    def allocate(cls) -> mmap.mmap:
        return mmap.mmap(-1, 2 * cls.SLOTS * 4)  # anonymous, MAP_SHARED: inherited by forked workers

    def reset(self) -> None:
        for i in range(self.SLOTS):
            self.counts[self.base + i] = 0

    def publish(self, connections: int) -> None:
        if self.index < self.count:
            self.counts[self.base + self.index] = connections

    def my_turn(self, connections: int) -> bool:
        """True when no sibling has fewer live connections than ``connections``."""
        others = [self.counts[self.base + i] for i in range(self.count) if i != self.index]
        return not others or connections <= min(others)


def _tell(fd: int, message: str) -> None:
    try:
        os.write(fd, message.encode("utf-8", "replace"))
    except OSError:
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, OSError):
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _waitpid(pid: int) -> tuple[int, int]:
    try:
        return os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return pid, 0


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _bind_message(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; stop what uses it or choose another with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {host}:{port} (ports below 1024 need privileges)"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines with time, pid and logger to stderr (the server log)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
