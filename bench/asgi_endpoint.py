"""The maintained-server candidate: uvicorn (httptools' C parser) with the endpoint's own batcher.

What ``bench/server_compare.py`` measures against ``python -m stsmon.endpoint
serve``. Everything but the HTTP layer is the endpoint's: the same pre-fork
shape (the parent binds one listening socket and forks one worker per core,
each inheriting it), per worker the package's container environment (thread
caps), the GIL switch interval, :class:`stsmon.endpoint.model.InferenceHandler`
(the package's ``inference.py``), :class:`stsmon.endpoint.batching.Batcher`
(the same dynamic batching, fed with uvicorn's live connection count) and
:class:`stsmon.endpoint.capture.CaptureWriter` (the same capture records).
The HTTP server is ``uvicorn.Server`` (``http="httptools"``, the asyncio loop
like ours; ``--http h11`` for the pure-Python parser) serving a small ASGI app
with the container contract: ``GET /ping``, ``POST /invocations`` (inference
id checked as the endpoint checks it, 503 over ``--max-queue``, 504 after
``--timeout``). The accept loop and the balancing of connections between the
workers are the endpoint's too (see ``_serve``); uvicorn parses and answers.
Not the runtime path or SIGHUP swaps. Each worker logs at exit its connection
count, batches and capture records.

    python bench/asgi_endpoint.py --model MODEL_DIR --port 8090 [--capture-dir DIR] [--workers 2]
        [--http httptools|h11] [--max-batch 64] [--batch-wait 0.0005] [--env KEY=VALUE ...]

Prints ``ready`` once every worker has loaded the model; SIGTERM drains and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import socket
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from stsmon.clock import Clock, SystemClock  # noqa: E402
from stsmon.endpoint.batching import Batcher  # noqa: E402
from stsmon.endpoint.capture import CaptureSettings, CaptureWriter  # noqa: E402
from stsmon.endpoint.capture_record import CaptureEvent  # noqa: E402
from stsmon.endpoint.model import InferenceHandler, container_request, default_accept  # noqa: E402
from stsmon.endpoint.server import THREAD_VARS, ConnectionBalance, bind  # noqa: E402
from stsmon.endpoint.worker import (  # noqa: E402
    ACCEPT_DEFER_SECONDS, ACCEPT_DEFERRALS, MAX_INFERENCE_ID, SWITCH_INTERVAL, WorkerLimits, _valid_inference_id)

log = logging.getLogger("bench.asgi_endpoint")
VARIANT = "AllTraffic"


class Job:
    __slots__ = ("body", "program_type", "accept", "content_type", "inference_id", "arrived", "future", "done")

    def __init__(self, body, program_type, accept, content_type, inference_id, arrived, future):
        self.body = body
        self.program_type = program_type
        self.accept = accept
        self.content_type = content_type
        self.inference_id = inference_id
        self.arrived = arrived
        self.future = future
        self.done = False


class InvocationsApp:
    """ASGI 3 app: the container contract over the endpoint's batcher and capture."""

    def __init__(self, handler: InferenceHandler, *, limits: WorkerLimits, capture: CaptureWriter | None,
                 sampling: float, accept_default: str, clock: Clock) -> None:
        self.limits = limits
        self.capture = capture
        self.sampling = sampling
        self.default_accept = accept_default
        self.clock = clock
        self.server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[tuple[str, int]] = set()  # (host, port) of every connection seen
        self._rng = random.Random()
        self.batcher = Batcher(handler, max_batch=limits.max_batch, batch_wait=limits.batch_wait,
                               open_connections=self._open_connections, deliver=self._from_batcher)

    def _open_connections(self) -> int:
        return len(self.server.server_state.connections) if self.server is not None else 0

    def _from_batcher(self, jobs, results) -> None:
        self.loop.call_soon_threadsafe(self._deliver, jobs, results)

    @staticmethod
    def _deliver(jobs, results) -> None:
        for job, res in zip(jobs, results):
            if not job.future.done():
                job.future.set_result(res)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if scope.get("client"):
            self.clients.add(tuple(scope["client"]))
        path, method = scope["path"], scope["method"]
        if path == "/ping":
            if method in ("GET", "HEAD"):
                await _respond(send, 200, b"", None)
            else:
                await _plain(send, 405, f"method {method} is not allowed on /ping; use GET", (b"allow", b"GET, HEAD"))
            return
        if path != "/invocations":
            await _plain(send, 404, f"no such path: {path} (try POST /invocations or GET /ping)")
            return
        if method != "POST":
            await _plain(send, 405, f"method {method} is not allowed on {path}; use POST", (b"allow", b"POST"))
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.container_max_body:
                await _plain(send, 413, f"request body is larger than the {self.limits.container_max_body} byte limit")
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            key, val = k.decode("latin-1"), v.decode("latin-1")
            headers[key] = headers[key] + ", " + val if key in headers else val
        inference_id = headers.get("x-amzn-sagemaker-inference-id")
        if inference_id is not None and not _valid_inference_id(inference_id):
            await _plain(send, 400, f"X-Amzn-SageMaker-Inference-Id must be 1-{MAX_INFERENCE_ID} printable "
                                    f"characters not starting with a space, got {inference_id[:80]!r}")
            return
        if len(self.batcher) >= self.limits.max_queue:
            await _plain(send, 503, "the endpoint is overloaded; retry after 1 second", (b"retry-after", b"1"))
            return
        program_type, accept = container_request(headers, self.default_accept)
        job = Job(body, program_type, accept, headers.get("content-type", ""), inference_id,
                  self.clock.now().timestamp(), self.loop.create_future())
        self.batcher.submit(job)
        try:
            res = await asyncio.wait_for(job.future, self.limits.timeout)
        except asyncio.TimeoutError:
            job.done = True
            await _plain(send, 504, f"the model did not answer within {self.limits.timeout:g} s")
            return
        job.done = True
        variant = (b"x-amzn-invoked-production-variant", VARIANT.encode())
        if res.kind == "ok":
            await _respond(send, 200, res.body, res.content_type,
                           variant, (b"x-amzn-requestid", str(uuid.uuid4()).encode()))
            if self.capture is not None and (self.sampling >= 100 or self._rng.random() * 100 < self.sampling):
                self.capture.submit(CaptureEvent(job.arrived, job.inference_id, job.content_type, job.body,
                                                 res.content_type, res.body))
        else:
            await _respond(send, res.status, res.body, res.content_type, variant)


async def _respond(send, status: int, body: bytes, content_type: str | None, *headers) -> None:
    head = [(b"content-length", str(len(body)).encode())]
    if content_type:
        head.append((b"content-type", content_type.encode("latin-1")))
    head.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _plain(send, status: int, message: str, *headers) -> None:
    await _respond(send, status, (message + "\n").encode(), "text/plain; charset=utf-8", *headers)


async def _serve(server: uvicorn.Server, sock, balance: ConnectionBalance) -> None:
    """Run ``server`` on connections this worker accepts from the shared socket.

    uvicorn gets no listening socket (``serve(sockets=[])``): the accept loop is
    the endpoint's (``Worker._accept``: one connection per wakeup, the
    :class:`ConnectionBalance` gate), and each accepted socket is handed to
    uvicorn's own HTTP protocol class (httptools or h11), built exactly as
    ``uvicorn.Server.startup`` builds it. So both servers spread connections
    over the workers the same way and differ in the HTTP layer alone.
    """
    loop = asyncio.get_running_loop()
    config = server.config
    connections = server.server_state.connections
    state = {"attaching": 0, "deferred": 0, "accepting": False}

    def publish() -> None:
        balance.publish(len(connections) + state["attaching"])

    def protocol():
        return config.http_protocol_class(config=config, server_state=server.server_state,
                                          app_state=server.lifespan.state, _loop=loop)

    def resume() -> None:
        if state["accepting"]:
            loop.add_reader(sock.fileno(), accept)

    async def attach(conn) -> None:
        try:
            await loop.connect_accepted_socket(protocol, sock=conn)
        except OSError:
            conn.close()
        finally:
            state["attaching"] -= 1
            publish()

    def accept() -> None:
        if not balance.my_turn(len(connections) + state["attaching"]) and state["deferred"] < ACCEPT_DEFERRALS:
            state["deferred"] += 1
            loop.remove_reader(sock.fileno())
            loop.call_later(ACCEPT_DEFER_SECONDS, resume)
            return
        state["deferred"] = 0
        try:
            conn, _addr = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state["attaching"] += 1
        publish()
        loop.create_task(attach(conn))

    def watch() -> None:
        publish()
        if server.should_exit:
            if state["accepting"]:
                state["accepting"] = False
                loop.remove_reader(sock.fileno())
                sock.close()
            return
        loop.call_later(0.05, watch)

    task = asyncio.create_task(server.serve(sockets=[]))
    while not server.started and not task.done():
        await asyncio.sleep(0.005)
    sock.setblocking(False)
    state["accepting"] = True
    loop.add_reader(sock.fileno(), accept)
    watch()
    await task


def _worker(sock, args, env: dict[str, str], index: int, ready_w: int, balance: ConnectionBalance) -> int:
    for var in THREAD_VARS:
        os.environ.pop(var, None)
    os.environ.update(env)
    sys.setswitchinterval(SWITCH_INTERVAL)
    limits = WorkerLimits(max_batch=args.max_batch, max_queue=args.max_queue, timeout=args.timeout,
                          batch_wait=args.batch_wait)
    handler = InferenceHandler.load(args.model, env, max_batch=limits.max_batch)
    capture = None
    if args.capture_dir is not None:
        settings = CaptureSettings(folder=args.capture_dir.resolve(), destination_uri=str(args.capture_dir),
                                   sampling_percentage=args.sampling)
        capture = CaptureWriter(settings, args.name).start()
    app = InvocationsApp(handler, limits=limits, capture=capture, sampling=args.sampling,
                         accept_default=default_accept(env), clock=SystemClock())
    config = uvicorn.Config(app, interface="asgi3", http=args.http, loop="asyncio", lifespan="off",
                            access_log=False, log_config=None, server_header=False, date_header=False,
                            timeout_keep_alive=int(limits.idle_timeout))
    server = uvicorn.Server(config)
    app.server = server
    app.batcher.start()
    # uvicorn re-raises the stop signal once it has shut down (to run the handler it
    # replaced): with the default handler that would kill the worker before the
    # capture writer's last flush below.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    os.write(ready_w, b"ready\n")
    os.close(ready_w)
    try:
        asyncio.run(_serve(server, sock, balance))
    finally:
        app.batcher.stop(5.0)
        written = capture.close().written if capture is not None else 0
        log.warning("worker %d: %d connection(s), %d batch(es), %d invocation(s), %d capture record(s)",
                    index, len(app.clients), app.batcher.batches, app.batcher.jobs, written)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="extracted model folder (model.joblib + code/)")
    p.add_argument("--name", default="bench")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--http", choices=["httptools", "h11"], default="httptools")
    p.add_argument("--capture-dir", type=Path)
    p.add_argument("--sampling", type=float, default=100.0)
    p.add_argument("--max-batch", type=int, default=WorkerLimits.max_batch)
    p.add_argument("--batch-wait", type=float, default=WorkerLimits.batch_wait)
    p.add_argument("--max-queue", type=int, default=WorkerLimits.max_queue)
    p.add_argument("--timeout", type=float, default=WorkerLimits.timeout)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    env = dict(item.split("=", 1) for item in args.env)
    sock = bind(args.host, args.port)
    sock.set_inheritable(True)
    memory = ConnectionBalance.allocate()
    ConnectionBalance(memory, 1, 0, args.workers).reset()
    children: list[int] = []
    readers = []
    for index in range(args.workers):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 70
            try:
                code = _worker(sock, args, env, index, w, ConnectionBalance(memory, 1, index, args.workers))
            except BaseException:
                log.exception("worker crashed")
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(w)
        children.append(pid)
        readers.append(r)
    sock.close()
    for r in readers:
        if os.read(r, 64) != b"ready\n":
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            print("error: a worker failed to load the model", file=sys.stderr)
            return 3
        os.close(r)
    print("ready", flush=True)

    def stop(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
