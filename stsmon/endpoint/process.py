"""Running the endpoint server in the background (pid, log, URL) or in the foreground.

Per endpoint, under the state folder (docs/CONTRACTS.md §4)::

    endpoints/{name}/serving.json    the server spec (what to serve; SIGHUP re-reads it)
    endpoints/{name}/endpoint.json   the record the server keeps: status, url, pid, model, capture
    endpoints/{name}/server.log      the server's log (background mode)
    endpoints/{name}/capture-stats/  per-worker capture counters (written, dropped)
    endpoints/{name}/models/         extracted model archives, by content hash

:func:`start_endpoint` starts a server, or, when one already runs for that
endpoint on the same address, swaps its model without dropping requests
(SIGHUP). :func:`stop_endpoint` drains and stops it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import supervisor
from ..clock import Clock
from ..fileio import write_json_atomic
from ..errors import NotDeployedError, StsmonError
from ..state import StateDir
from .server import Master, ServerSpec, configure_logging

#: Seconds to wait for a background server to load the model and answer.
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class EndpointPaths:
    folder: Path

    @property
    def spec(self) -> Path:
        return self.folder / "serving.json"

    @property
    def record(self) -> Path:
        return self.folder / "endpoint.json"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def stats(self) -> Path:
        return self.folder / "capture-stats"

    @property
    def models(self) -> Path:
        return self.folder / "models"


def endpoint_paths(state: StateDir, name: str) -> EndpointPaths:
    if not name or "/" in name or name in (".", ".."):
        raise StsmonError(f"bad endpoint name {name!r}")
    return EndpointPaths(state.endpoints / name)


def with_state_paths(state: StateDir, spec: ServerSpec) -> ServerSpec:
    """``spec`` with its record and stats paths inside the state folder."""
    p = endpoint_paths(state, spec.endpoint_name)
    return spec.with_changes(record_path=str(p.record), stats_dir=str(p.stats))


# -- reading records -------------------------------------------------------------


def read_record(state: StateDir, name: str) -> dict[str, Any] | None:
    """The endpoint's record with ``running`` set (None when it never ran)."""
    path = endpoint_paths(state, name).record
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise StsmonError(f"endpoint record {path} is not valid JSON ({exc}); remove it or run stsmon cleanup") from exc
    record["running"] = (record.get("status") in ("InService", "Updating", "Creating")
                         and supervisor.is_alive(supervisor.ProcessRef.from_json(record)))
    record["log"] = str(endpoint_paths(state, name).log)
    return record


def list_records(state: StateDir) -> list[dict[str, Any]]:
    """Records of every endpoint that has one, by name."""
    if not state.endpoints.is_dir():
        return []
    out = []
    for folder in sorted(state.endpoints.iterdir()):
        if (folder / "endpoint.json").is_file():
            rec = read_record(state, folder.name)
            if rec is not None:
                out.append(rec)
    return out


def capture_stats(state: StateDir, name: str) -> dict[str, int]:
    """Capture counters summed over the workers' stats files (written, dropped ...)."""
    total: dict[str, int] = {"submitted": 0, "written": 0, "dropped": 0, "files": 0}
    folder = endpoint_paths(state, name).stats
    for path in sorted(folder.glob("worker-*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for key in total:
            total[key] += int(data.get(key, 0))
    return total


# -- starting and stopping ----------------------------------------------------------


def start_endpoint(state: StateDir, spec: ServerSpec, *, timeout: float = START_TIMEOUT,
                   env: dict[str, str] | None = None) -> dict[str, Any]:
    """Serve ``spec`` in the background; return the record once it is in service.

    If the endpoint's server already runs on the same host and port, its
    model is swapped in place (no request dropped); on another address it is
    stopped first. Raises :class:`StsmonError` with the server's reason (and
    its log) when it cannot start; a failed swap leaves the old model serving.
    """
    spec = with_state_paths(state, spec)
    paths = endpoint_paths(state, spec.endpoint_name)
    paths.folder.mkdir(parents=True, exist_ok=True)
    current = read_record(state, spec.endpoint_name)
    if current and current["running"]:
        if current.get("host") == spec.host and (spec.port in (0, current.get("port"))):
            return _swap(state, spec, current, timeout)
        stop_endpoint(state, spec.endpoint_name)
    write_json_atomic(paths.spec, spec.to_json())
    for stale in paths.stats.glob("worker-*.json") if paths.stats.is_dir() else ():
        stale.unlink()
    with open(paths.log, "ab") as log:
        log.write(f"--- starting endpoint {spec.endpoint_name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "stsmon.endpoint", "serve", "--spec", str(paths.spec)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env=env,
        )
    deadline = time.monotonic() + timeout
    while True:
        record = read_record(state, spec.endpoint_name)
        if record and record.get("pid") == proc.pid:
            if record.get("status") == "InService":
                return record
            if record.get("status") == "Failed":
                proc.wait(10)
                raise StsmonError(f"endpoint {spec.endpoint_name} failed to start: {record.get('failure_reason')}"
                                  f" (log: {paths.log})")
        code = proc.poll()
        if code is not None:
            raise StsmonError(f"endpoint {spec.endpoint_name} server exited with code {code} before it was ready; "
                              f"last log lines:\n{_tail(paths.log)}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise StsmonError(f"endpoint {spec.endpoint_name} was not in service after {timeout:g} s; "
                              f"see {paths.log}")
        time.sleep(0.05)


def _swap(state: StateDir, spec: ServerSpec, current: dict[str, Any], timeout: float) -> dict[str, Any]:
    paths = endpoint_paths(state, spec.endpoint_name)
    spec = spec.with_changes(port=current["port"])
    before = int(current.get("reload_count", 0))
    write_json_atomic(paths.spec, spec.to_json())
    if not supervisor.send_signal(supervisor.ProcessRef.from_json(current), signal.SIGHUP):
        raise StsmonError(f"endpoint {spec.endpoint_name} stopped before the model swap; see {paths.log}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_record(state, spec.endpoint_name)
        if record is None or not record["running"]:
            raise StsmonError(f"endpoint {spec.endpoint_name} stopped during the model swap; see {paths.log}")
        if int(record.get("reload_count", 0)) > before and record.get("status") == "InService":
            if record.get("last_update_error"):
                raise StsmonError(f"endpoint {spec.endpoint_name}: the new model did not load, the previous one "
                                  f"keeps serving: {record['last_update_error']} (log: {paths.log})")
            return record
        time.sleep(0.05)
    raise StsmonError(f"endpoint {spec.endpoint_name}: model swap not finished after {timeout:g} s; see {paths.log}")


def stop_endpoint(state: StateDir, name: str, *, timeout: float = 45.0) -> bool:
    """Drain and stop the endpoint's server. False if it was not running.

    SIGTERM first (every received request is answered, capture files
    closed); SIGKILL to the whole process group after ``timeout`` seconds.
    """
    record = read_record(state, name)
    if record is None:
        raise NotDeployedError(f"no local endpoint named {name!r} (nothing under {endpoint_paths(state, name).folder})")
    if not record["running"]:
        return False
    if not supervisor.stop(supervisor.ProcessRef.from_json(record), timeout=timeout, group=True):
        return False
    record = read_record(state, name)
    if record is not None and record.get("status") != "Stopped":
        data = {k: v for k, v in record.items() if k not in ("running", "log")}
        data["status"] = "Stopped"
        write_json_atomic(endpoint_paths(state, name).record, data)
    return True


def serve_foreground(state: StateDir, spec: ServerSpec, *, clock: Clock, on_ready=None) -> int:
    """Serve ``spec`` in this process until Ctrl-C / SIGTERM; returns the exit code."""
    spec = with_state_paths(state, spec)
    paths = endpoint_paths(state, spec.endpoint_name)
    current = read_record(state, spec.endpoint_name)
    if current and current["running"]:
        raise StsmonError(f"endpoint {spec.endpoint_name} already runs in the background (pid {current['pid']}); "
                          "stop it first with: stsmon deploy --stop")
    paths.folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.spec, spec.to_json())
    configure_logging()
    return Master(spec, paths.spec, clock=clock).run(on_ready=on_ready)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])
