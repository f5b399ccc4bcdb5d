"""Run the rebuilt scikit-learn image's ``serve`` and relay HTTP requests to it.

Runs inside the network namespace (standard library only), started by
``tests/serving/realstack.py``::

    unshare --net -- PYTHON container.py SPEC_JSON

``SPEC_JSON``: ``{"python", "entry", "env", "port", "log", "startup_timeout",
"loopback_up"}``. Brings the loopback interface up (a new network namespace
has only ``lo``, and down), starts ``PYTHON ENTRY`` (the image's ``serve``)
with exactly ``env``, waits until ``/ping`` answers 200 or ``serve`` exits,
and writes one JSON line on stdout::

    {"ready": true|false, "ping": STATUS|null, "exit_code": CODE|null, "pid": PID}

(``PID``: ``serve``'s, also its process group).

Then each JSON line on stdin ``{"method", "path", "headers", "body_b64"}`` is
sent to ``127.0.0.1:PORT`` and answered with one line ``{"status",
"headers": [[name, value] ...], "body_b64"}`` (``{"error": ...}`` when the
connection fails). End of input kills ``serve`` and its process group.
"""

from __future__ import annotations

import base64
import fcntl
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    """``ip link set lo up`` without iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def request(port: int, method: str, path: str, headers: dict, body: bytes | None, timeout: float = 60.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen, port: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return {"ready": False, "ping": last, "exit_code": code}
        try:
            last = request(port, "GET", "/ping", {}, None, timeout=10.0)[0]
        except OSError:
            last = None
        if last == 200:
            return {"ready": True, "ping": 200, "exit_code": None}
        time.sleep(0.2)
    return {"ready": False, "ping": last, "exit_code": proc.poll()}


def stop(proc: subprocess.Popen) -> None:
    """Kill ``serve`` and everything it started (a container being removed)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    if spec.get("loopback_up", True):
        loopback_up()
    port = int(spec["port"])
    with open(spec["log"], "ab") as log:
        proc = subprocess.Popen([spec["python"], spec["entry"]], env=spec["env"], cwd=spec["env"].get("HOME"),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        ready = wait_ready(proc, port, float(spec.get("startup_timeout", 90)))
        print(json.dumps({**ready, "pid": proc.pid}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            body = base64.b64decode(req["body_b64"]) if req.get("body_b64") is not None else None
            try:
                status, headers, data = request(port, req["method"], req["path"], req.get("headers") or {}, body)
                out = {"status": status, "headers": headers, "body_b64": base64.b64encode(data).decode("ascii")}
            except OSError as exc:
                out = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(out), flush=True)
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
