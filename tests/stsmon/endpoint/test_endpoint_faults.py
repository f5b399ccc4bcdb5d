"""Limits and faults: overload, timeouts, crashed workers, model swap under load,
SIGTERM drain, SIGKILL, a full disk. (The 10-round SIGKILL loss measurement is
``bench/endpoint_faults.py``.)"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from stsmon.endpoint.capture import scan_capture
from stsmon.endpoint.process import capture_stats, read_record, start_endpoint
from stsmon.endpoint.server import ServerSpec
from stsmon.endpoint.worker import WorkerLimits
from stsmon.errors import StsmonError

CSV = "text/csv"


def post(port: int, body: bytes, inference_id: str | None = None, path: str = "/invocations",
         timeout: float = 30) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": CSV, "Accept": CSV}
    if inference_id:
        headers["X-Amzn-SageMaker-Inference-Id"] = inference_id
    try:
        conn.request("POST", path, body, headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def in_parallel(fn, args_list) -> list:
    results: list = [None] * len(args_list)

    def run(i, args):
        try:
            results[i] = fn(*args)
        except Exception as exc:  # recorded, asserted by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def wait_until(predicate, timeout: float = 20.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def accepted_connections(server) -> int:
    """Client connections the server's workers have accepted: the sockets they hold on its port (a connection
    still in the kernel's accept queue belongs to no process)."""
    count = 0
    for pid in read_record(server.state, server.name)["worker_pids"]:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        count += sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port for c in connections)
    return count


def test_overload_answers_503_with_retry_after_and_never_hangs(start_server, toy_model_dir):
    server = start_server(toy_model_dir, workers=1, limits=WorkerLimits(max_queue=2, max_batch=1))
    results = in_parallel(post, [(server.port, b"__sleep__ 0.3,x\n")] * 12)
    statuses = [r[0] for r in results]
    assert all(isinstance(r, tuple) for r in results), results
    assert statuses.count(503) >= 1 and statuses.count(200) >= 1
    assert set(statuses) <= {200, 503}
    for status, headers, body in results:
        if status == 503:
            assert headers["retry-after"] == "1" and b"overloaded" in body
    assert server.ping() == 200


@pytest.fixture(scope="module")
def short_timeouts(module_servers, toy_model_dir):
    """One worker whose invocation, slow-request and idle timeouts are all 1 s."""
    return module_servers(toy_model_dir, workers=1, capture=False, limits=WorkerLimits(timeout=1.0, idle_timeout=1.0))


def test_invocation_timeout_answers_504_and_424_model_error(short_timeouts, tmp_path):
    server = short_timeouts
    # The slow request must occupy the worker before the second arrives (on a busy machine
    # two requests sent "together" may reach it in either order): the model says when it has it.
    started = tmp_path / "slow-started"
    slow: list = []
    first = threading.Thread(target=lambda: slow.append(post(server.port, f"__sleep__ 3 {started},x\n".encode())))
    first.start()
    assert wait_until(started.exists), "the slow request never reached the model"
    runtime = post(server.port, b"__sleep__ 0.1,x\n", None, f"/endpoints/{server.name}/invocations")
    first.join(30)
    (container,) = slow
    assert container[0] == 504 and b"did not answer within 1 s" in container[2]
    assert runtime[0] == 424
    error = json.loads(runtime[2])
    assert runtime[1]["x-amzn-errortype"].startswith("ModelError") and "timed out" in error["OriginalMessage"]
    assert wait_until(lambda: server.ping() == 200)


def test_idle_never_used_and_slow_connections_are_closed(short_timeouts):
    """uvicorn 0.55 arms its keep-alive timeout only after a response (a connection that never
    sends stays open) and has no slow-request timeout (uvicorn/protocols/http/httptools_impl.py,
    ``on_response_complete``): the worker's once-a-second sweep closes connections idle for
    ``idle_timeout`` and requests whose bytes have not all arrived within ``timeout``."""
    server = short_timeouts
    started = time.monotonic()
    never = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 8\r\n\r\na b")
    used = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    used.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert used.recv(65536).startswith(b"HTTP/1.1 200 ")
    for sock in (never, slow, used):
        assert sock.recv(65536) == b""  # closed by the server, without an answer
        sock.close()
    assert time.monotonic() - started < 8
    assert server.ping() == 200


def test_a_crashed_worker_is_replaced(start_server, toy_model_dir):
    server = start_server(toy_model_dir, workers=1)
    before = read_record(server.state, server.name)["worker_pids"]
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        post(server.port, b"__exit__,x\n")
    record = wait_until(lambda: (r := read_record(server.state, server.name))["worker_pids"] != before and r)
    assert record and len(record["worker_pids"]) == 1 and record["worker_pids"] != before
    assert post(server.port, b"a b,a c\n")[0] == 200


@pytest.mark.slow
def test_redeploy_swaps_the_model_without_dropping_a_request(start_server, toy_model_dir, toy_builder,
                                                             server_env, tmp_path):
    server = start_server(toy_model_dir, workers=2)
    model_b = toy_builder(tmp_path / "model_b", work=1000)
    stop = threading.Event()
    outcomes: list = []

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                conn.request("POST", "/invocations", b"a b,a c\n",
                             {"Content-Type": CSV, "X-Amzn-SageMaker-Inference-Id": f"swap_{n}_{i}"})
                resp = conn.getresponse()
                resp.read()
                outcomes.append(resp.status)
            except Exception as exc:  # any connection error is a dropped request
                outcomes.append(repr(exc))
                conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: len(outcomes) > 50)
    spec = json.loads((server.state.endpoints / server.name / "serving.json").read_text())
    new = ServerSpec.from_json({**spec, "model_dir": str(model_b)})
    record = start_endpoint(server.state, new, env=server_env)
    n_at_swap = len(outcomes)
    wait_until(lambda: len(outcomes) > n_at_swap + 50)
    stop.set()
    for t in threads:
        t.join(30)
    assert record["generation"] == 2 and record["model_dir"] == str(model_b) and record["port"] == server.port
    assert record["pid"] == server.record["pid"]  # same server, new workers
    assert set(record["worker_pids"]).isdisjoint(server.record["worker_pids"])
    failures = [o for o in outcomes if o != 200]
    assert failures == [] and len(outcomes) > 100


def test_a_model_that_fails_to_load_on_redeploy_leaves_the_old_one_serving(start_server, toy_model_dir, server_env,
                                                                           tmp_path):
    server = start_server(toy_model_dir, workers=1)
    broken = tmp_path / "broken"
    (broken / "code").mkdir(parents=True)
    (broken / "code" / "inference.py").write_text("def model_fn(d):\n    raise IOError('no model.joblib here')\n"
                                                  "input_fn = predict_fn = output_fn = None\n")
    spec = json.loads((server.state.endpoints / server.name / "serving.json").read_text())
    with pytest.raises(StsmonError, match="previous one keeps serving.*defines neither transform_fn nor input_fn"):
        start_endpoint(server.state, ServerSpec.from_json({**spec, "model_dir": str(broken)}), env=server_env)
    assert post(server.port, b"a b,a c\n")[0] == 200
    assert read_record(server.state, server.name)["model_dir"] == str(toy_model_dir)


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests_and_closes_capture_files(start_server, toy_model_dir):
    server = start_server(toy_model_dir, workers=2, flush_interval=1.0)
    pid = server.record["pid"]
    answers: list = []
    threads = [threading.Thread(target=lambda i=i: answers.append(post(server.port, b"__sleep__ 0.4,x\n", f"drain_{i}")))
               for i in range(6)]
    for t in threads:
        t.start()
    # Wait until every request is inside the server (queued or predicting: its workers hold the connection) or
    # answered, then stop it with some still in flight (6 x 0.4 s on 2 workers take >= 1.2 s).
    assert wait_until(lambda: accepted_connections(server) + len(answers) == 6), (accepted_connections(server), answers)
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)  # a keep-alive client between requests
    idle.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
    os.kill(pid, signal.SIGTERM)
    assert len(answers) < 6, "every request was answered before the SIGTERM: nothing was drained"
    for t in threads:
        t.join(30)
    assert sorted(a[0] for a in answers) == [200] * 6
    # Answers given while draining say so; an idle keep-alive connection is closed (after DRAIN_IDLE_GRACE).
    assert any(a[1].get("connection") == "close" for a in answers), [a[1] for a in answers]
    assert idle.recv(65536) == b""
    idle.close()
    assert wait_until(lambda: not read_record(server.state, server.name)["running"], timeout=30)
    assert read_record(server.state, server.name)["status"] == "Stopped"
    scan = scan_capture(server.capture_root)
    assert sorted(r["eventMetadata"]["inferenceId"] for r in scan.records) == sorted(f"drain_{i}" for i in range(6))
    assert scan.bad_lines == 0 and scan.incomplete_last_lines == 0
    assert all(f.read_bytes().endswith(b"\n") for f in scan.files)


@pytest.mark.slow
def test_sigkill_mid_load_corrupts_nothing_and_a_new_server_starts(start_server, toy_model_dir):
    server = start_server(toy_model_dir, workers=2, flush_interval=0.2)
    pgid = server.record["pid"]
    sent: list[str] = []
    acked: list[str] = []
    stop = threading.Event()

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        i = 0
        while not stop.is_set():
            i += 1
            iid = f"kill_{n}_{i}"
            sent.append(iid)
            try:
                conn.request("POST", "/invocations", b"a b,a c\n",
                             {"Content-Type": CSV, "X-Amzn-SageMaker-Inference-Id": iid})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    acked.append(iid)
            except Exception:  # the server is gone
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    # Kill once some records are on disk and more are in flight.
    wait_until(lambda: len(acked) > 300 and scan_capture(server.capture_root).records)
    os.killpg(pgid, signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(30)
    scan = scan_capture(server.capture_root)
    ids = [r["eventMetadata"]["inferenceId"] for r in scan.records]
    assert scan.bad_lines == 0  # no corrupt line anywhere; at most an incomplete last line per open file
    assert scan.incomplete_last_lines <= len(scan.files)
    assert len(ids) == len(set(ids)) and set(ids) <= set(sent)
    assert len(ids) > 0
    # The record still says InService, but the pid is gone: a new server starts cleanly.
    # (SIGKILL is delivered at once, but tearing the process down takes a moment on a busy machine.)
    assert wait_until(lambda: not read_record(server.state, server.name)["running"])
    again = start_server(toy_model_dir, workers=1, state=server.state)
    assert again.ping() == 200


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB tmpfs (needs root, as in CI's container); skipped elsewhere."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_keeps_serving_and_counts_dropped_captures(start_server, toy_model_dir, tiny_disk):
    server = start_server(toy_model_dir, workers=1, flush_interval=0.1, capture_folder=tiny_disk)
    row = ("word " * 400).strip()
    body = f"{row},{row}\n".encode()  # ~4 KB in, captured ~8 KB per record: 256 KiB fills after ~30
    statuses = [post(server.port, body, f"disk_{i}")[0] for i in range(120)]
    assert statuses == [200] * 120
    stats = wait_until(lambda: (s := capture_stats(server.state, server.name))["dropped"] > 0 and s)
    assert stats and stats["dropped"] > 0 and stats["written"] > 0
    assert server.ping() == 200
    server.stop()
    stats = capture_stats(server.state, server.name)
    assert stats["written"] + stats["dropped"] == 120
    scan = scan_capture(tiny_disk)
    assert len(scan.records) == stats["written"] and scan.bad_lines == 0 and scan.incomplete_last_lines == 0
    log = Path(server.state.endpoints / server.name / "server.log").read_text()
    assert "dropped" in log and "disk full" in log
