"""One server worker process: an asyncio HTTP loop plus one inference thread.

The event loop thread accepts connections, parses requests, answers
``/ping`` and every error it can decide alone (404, 405, 413, validation,
overload), and queues invocations. The inference thread takes **all** queued
invocations at once (up to ``max_batch``), runs them through the model's
``input_fn`` → one ``predict_fn`` → ``output_fn`` (see
:class:`stsmon.endpoint.model.InferenceHandler`) and hands the results back
to the loop, which writes the responses and queues the capture records. So a
worker costs one core, and under concurrency the per-call overhead of the
model (input parsing, scikit-learn's checks, the estimator call) is paid once
per batch instead of once per request.

Limits, each answered, never a hang: body above ``max_body`` on the runtime
path (SageMaker's 6 MB) or ``container_max_body`` on ``/invocations`` → 413; more
than ``max_queue`` invocations waiting → 503 with ``Retry-After``; more than
``max_connections`` open connections → 503 and close; an invocation not
answered within ``timeout`` seconds → 504 on ``/invocations`` (424
``ModelError`` on the runtime path, as SageMaker); a request whose bytes do
not all arrive within ``timeout`` → connection closed; idle keep-alive
connections closed after ``idle_timeout``.

SIGTERM: stop accepting, answer everything already received (responses say
``Connection: close``), close idle connections, write and close the capture
files, exit. ``drain_timeout`` bounds the wait.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

from stscontracts import names

from ..clock import Clock
from .capture import CaptureWriter
from .batching import Batcher
from .capture_record import CaptureEvent
from .model import DEFAULT_ACCEPT, InferenceHandler, Result, container_request
from .protocol import DISCARD_LIMIT, HttpConnection, Request

log = logging.getLogger("stsmon.endpoint.worker")

#: GIL switch interval of a worker (s): short, so the loop thread gets the GIL
#: back quickly from the CPU-bound inference thread to read requests and write
#: answers (Python's default, 5 ms, shows up directly in p99 latency).
SWITCH_INTERVAL = 0.0005
#: Accept balancing (see server.ConnectionBalance): waits before taking a connection anyway.
ACCEPT_DEFERRALS = 5
ACCEPT_DEFER_SECONDS = 0.002
#: While draining, a keep-alive connection idle this long (s) is closed.
DRAIN_IDLE_GRACE = 0.25

#: SageMaker's limits.
MAX_BODY = 6 * 1024 * 1024
INVOCATION_TIMEOUT = 60.0
MAX_INFERENCE_ID = 64
MAX_CUSTOM_ATTRIBUTES = 1024

_VALIDATION = "ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/"
_MODEL_ERROR = "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"
_UNAVAILABLE = "ServiceUnavailable:http://internal.amazon.com/coral/com.amazon.sagemaker/"
_INTERNAL = "InternalFailure:http://internal.amazon.com/coral/com.amazon.coral.service/"


@dataclass(frozen=True)
class WorkerLimits:
    """Limits and timeouts of a worker (seconds, bytes, counts)."""

    max_body: int = MAX_BODY
    #: Bodies the container path reads and hands to the program (the image has no limit).
    container_max_body: int = DISCARD_LIMIT
    timeout: float = INVOCATION_TIMEOUT
    max_batch: int = 64
    max_queue: int = 256
    max_connections: int = 1024
    idle_timeout: float = 60.0
    drain_timeout: float = 30.0
    #: Dynamic batching: how long a busy inference thread waits for more requests (s; 0 = off;
    #: ``--batch-wait`` of ``python -m stsmon.endpoint serve``; see batching.Batcher).
    batch_wait: float = 0.0005

    def __post_init__(self) -> None:
        if not 0 <= self.batch_wait <= 1:
            raise ValueError(f"batch_wait must be 0-1 seconds, got {self.batch_wait!r}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch!r}")


class Job:
    """One invocation waiting for (or in) the inference thread."""

    __slots__ = ("conn", "runtime", "body", "content_type", "program_type", "accept", "inference_id",
                 "arrived", "deadline", "done", "keep_alive", "request_id")

    def __init__(self, conn, runtime, body, content_type, program_type, accept, inference_id, arrived, deadline,
                 keep_alive):
        self.conn = conn
        self.runtime = runtime
        self.body = body
        self.content_type = content_type  # as the client sent it (capture records it)
        self.program_type = program_type  # as the container hands it to the program
        self.accept = accept
        self.inference_id = inference_id
        self.arrived = arrived
        self.deadline = deadline
        self.done = False
        self.keep_alive = keep_alive
        self.request_id = None


class Worker:
    """Serves one listening socket (shared with sibling workers) until drained."""

    def __init__(
        self,
        listen_sock: socket.socket,
        handler: InferenceHandler,
        *,
        endpoint_name: str,
        variant: str = names.VARIANT,
        limits: WorkerLimits = WorkerLimits(),
        capture: CaptureWriter | None = None,
        sampling_percentage: float = 100.0,
        default_accept: str | None = None,
        region: str = "us-east-1",
        account: str = "000000000000",
        balance=None,
        clock: Clock,
    ) -> None:
        self.sock = listen_sock
        self.clock = clock  # request arrival times (capture); timeouts use the monotonic clock
        self.balance = balance  # server.ConnectionBalance, or None (a single worker, tests)
        self._deferred = 0
        self._attaching = 0  # accepted, not yet in self.connections
        self.handler = handler
        self.endpoint_name = endpoint_name
        self.variant = variant
        self.limits = limits
        self.capture = capture
        self.sampling = float(sampling_percentage)
        self.default_accept = default_accept or DEFAULT_ACCEPT
        self.region = region
        self.account = account
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set[HttpConnection] = set()
        self.inflight: dict[int, Job] = {}
        self.batcher = Batcher(handler, max_batch=limits.max_batch, batch_wait=limits.batch_wait,
                               open_connections=self.connections.__len__, deliver=self._from_batcher)
        self.draining = False
        self._done: asyncio.Future | None = None
        self._accepting = False
        self._runtime_prefix = "/endpoints/"
        self._variant_header = ("X-Amzn-Invoked-Production-Variant", variant)
        self._log_stream = (f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}")
        self._rng = random.Random()
        self.counts = collections.Counter()

    # -- lifecycle ------------------------------------------------------------

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT has drained everything (blocking)."""
        sys.setswitchinterval(SWITCH_INTERVAL)
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        self._done = loop.create_future()
        self.sock.setblocking(False)
        loop.add_reader(self.sock.fileno(), self._accept)
        self._accepting = True
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.begin_drain)
        self.batcher.start()
        loop.call_later(1.0, self._sweep)
        try:
            loop.run_until_complete(self._done)
        finally:
            self._shutdown()
            loop.close()

    def begin_drain(self) -> None:
        """Stop accepting; answer what was received; then stop."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: %d connection(s), %d invocation(s) in flight",
                 len(self.connections), len(self.inflight))
        self._stop_accepting()
        deadline = time.monotonic() + self.limits.drain_timeout
        self._check_drained(deadline)

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()  # this process's copy; siblings keep theirs

    def _check_drained(self, deadline: float) -> None:
        # A connection idle for DRAIN_IDLE_GRACE is closed; a busy client's next
        # request is still answered (with Connection: close), so a client that
        # sends back to back never races the close of its connection.
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.idle and now - conn.last_active >= DRAIN_IDLE_GRACE:
                conn.close()
        if not self.inflight and not self.connections:
            for conn in list(self.connections):
                conn.close()
            if not self._done.done():
                self._done.set_result(None)
            return
        if time.monotonic() > deadline:
            log.warning("drain timeout: closing %d connection(s) with %d invocation(s) unanswered",
                        len(self.connections), len(self.inflight))
            for conn in list(self.connections):
                conn.close()
            if not self._done.done():
                self._done.set_result(None)
            return
        self.loop.call_later(0.02, self._check_drained, deadline)

    def _shutdown(self) -> None:
        self.batcher.stop(5.0)
        log.info("inference: %d batch(es), %d invocation(s)", self.batcher.batches, self.batcher.jobs)
        if self.capture is not None:
            stats = self.capture.close()
            log.info("capture closed: %d written, %d dropped, %d file(s)", stats.written, stats.dropped, stats.files)

    # -- connections -------------------------------------------------------------

    def _accept(self) -> None:
        # Leave the connection to a sibling with fewer connections (it is woken by
        # the same event); after ACCEPT_DEFERRALS short waits take it anyway, so a
        # sibling busy in a long batch never keeps a client waiting.
        if self.balance is not None and not self.balance.my_turn(len(self.connections) + self._attaching):
            if self._deferred < ACCEPT_DEFERRALS:
                self._deferred += 1
                self.loop.remove_reader(self.sock.fileno())
                self.loop.call_later(ACCEPT_DEFER_SECONDS, self._resume_accept)
                return
        self._deferred = 0
        # Take one connection per wakeup: sibling workers woken by the same
        # event get the next ones, which spreads connections across workers.
        try:
            conn, _addr = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EMFILE and friends: back off a little
            log.warning("accept failed: %s", exc)
            self.loop.remove_reader(self.sock.fileno())
            self.loop.call_later(0.1, self._resume_accept)
            return
        if len(self.connections) >= self.limits.max_connections:
            try:
                conn.setblocking(False)
                conn.send(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
            except OSError:
                pass
            conn.close()
            self.counts["503"] += 1
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._attaching += 1
        self._publish()
        self.loop.create_task(self._attach(conn))

    async def _attach(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: HttpConnection(self, self.limits.max_body), sock=conn)
        except OSError:
            conn.close()
        finally:
            self._attaching -= 1
            self._publish()

    def _publish(self) -> None:
        if self.balance is not None:
            self.balance.publish(len(self.connections) + self._attaching)

    def _resume_accept(self) -> None:
        if self._accepting:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def connection_made(self, conn: HttpConnection) -> None:
        self.connections.add(conn)
        self._publish()

    def connection_lost(self, conn: HttpConnection) -> None:
        self.connections.discard(conn)
        self._publish()

    def _sweep(self) -> None:
        """Once a second: time out invocations, close idle and stalled connections."""
        now = time.monotonic()
        expired = [job for job in self.inflight.values() if job.deadline < now]
        for job in expired:
            self._timeout(job)
        for conn in list(self.connections):
            if conn.expired(now, self.limits.idle_timeout, self.limits.timeout):
                conn.close()
        if not self._done.done():
            self.loop.call_later(1.0, self._sweep)

    # -- requests ---------------------------------------------------------------

    def dispatch(self, conn: HttpConnection, req: Request) -> None:
        path = req.target.split("?", 1)[0]
        method = req.method
        keep = req.keep_alive and not self.draining
        if path == "/ping":
            if method == "GET" or method == "HEAD":
                conn.write_response(200, b"", None, (), keep)
            else:
                self._plain(conn, 405, f"method {method} is not allowed on /ping; use GET", keep, (("Allow", "GET, HEAD"),))
            return
        runtime = False
        if path == "/invocations":
            pass
        elif path.startswith(self._runtime_prefix):
            parts = path.split("/")
            if len(parts) != 4 or parts[3] != "invocations" or not parts[2]:
                self._plain(conn, 404, f"no such path: {path}", keep)
                return
            runtime = True
            name = unquote(parts[2])
            if method == "POST" and name != self.endpoint_name:
                self._aws_error(conn, 404, _VALIDATION,
                                f"Endpoint {name} of account {self.account} not found. "
                                f"This server serves endpoint {self.endpoint_name}.", keep)
                return
        else:
            self._plain(conn, 404, f"no such path: {path} (try POST /invocations or GET /ping)", keep)
            return
        if method != "POST":
            msg = f"method {method} is not allowed on {path}; use POST"
            if runtime:
                self._aws_error(conn, 405, _VALIDATION, msg, keep, (("Allow", "POST"),))
            else:
                self._plain(conn, 405, msg, keep, (("Allow", "POST"),))
            return
        self._invoke(conn, req, runtime, keep)

    def body_limit(self, target: str) -> int:
        """The body limit of a request: SageMaker's (6 MB) on the runtime path; on the
        container path the container's own, none (up to ``container_max_body``, then
        413 and close) - its program judges the size."""
        return self.limits.max_body if target.startswith(self._runtime_prefix) else self.limits.container_max_body

    def too_large(self, conn: HttpConnection, req: Request | None) -> None:
        keep = bool(req and req.keep_alive) and not self.draining
        runtime = bool(req and req.target.startswith(self._runtime_prefix))
        limit = self.body_limit(req.target) if req else self.limits.max_body
        msg = f"request body is larger than the {limit} byte limit"
        self.counts["413"] += 1
        if runtime:
            self._aws_error(conn, 413, _VALIDATION, msg, keep)
        else:
            self._plain(conn, 413, msg, keep)

    def _invoke(self, conn: HttpConnection, req: Request, runtime: bool, keep: bool) -> None:
        headers = req.headers
        body = req.body
        problem = None
        inference_id = headers.get("x-amzn-sagemaker-inference-id")
        if inference_id is not None and not _valid_inference_id(inference_id):
            problem = (f"X-Amzn-SageMaker-Inference-Id must be 1-{MAX_INFERENCE_ID} printable characters "
                       f"not starting with a space, got {inference_id[:80]!r}")
        attrs = headers.get("x-amzn-sagemaker-custom-attributes")
        if attrs is not None and (len(attrs) > MAX_CUSTOM_ATTRIBUTES or not attrs.isascii()):
            problem = f"X-Amzn-SageMaker-Custom-Attributes must be at most {MAX_CUSTOM_ATTRIBUTES} ASCII characters"
        variant = headers.get("x-amzn-sagemaker-target-variant")
        if variant is not None and variant != self.variant:
            problem = f"TargetVariant {variant} does not exist on endpoint {self.endpoint_name} (variants: {self.variant})"
        if "x-amzn-sagemaker-target-model" in headers:
            problem = f"endpoint {self.endpoint_name} is not a multi-model endpoint; do not send TargetModel"
        if problem is None and runtime and not body:  # SageMaker's front end; the container passes it on
            problem = "request body is empty"
        if problem is not None:
            self.counts["400"] += 1
            if runtime:
                self._aws_error(conn, 400, _VALIDATION, problem, keep)
            else:
                self._plain(conn, 400, problem, keep)
            return
        if len(self.batcher) >= self.limits.max_queue:
            self.counts["503"] += 1
            msg = "the endpoint is overloaded; retry after 1 second"
            extra = (("Retry-After", "1"),)
            if runtime:
                self._aws_error(conn, 503, _UNAVAILABLE, msg, keep, extra)
            else:
                self._plain(conn, 503, msg, keep, extra)
            return
        program_type, accept = container_request(headers, self.default_accept)
        job = Job(conn, runtime, body, headers.get("content-type", ""), program_type, accept, inference_id,
                  self.clock.now().timestamp(), time.monotonic() + self.limits.timeout, keep)
        self.inflight[id(job)] = job
        self.batcher.submit(job)

    # -- inference thread -------------------------------------------------------

    def _from_batcher(self, jobs: list[Job], results) -> None:
        """Called in the inference thread: answer on the loop."""
        self.loop.call_soon_threadsafe(self._deliver, jobs, results)

    # -- answering --------------------------------------------------------------

    def _deliver(self, jobs: list[Job], results: list[Result]) -> None:
        capture = self.capture
        for job, res in zip(jobs, results):
            if job.done:
                continue
            job.done = True
            del self.inflight[id(job)]
            conn = job.conn
            if conn.closed:
                self.counts["client gone"] += 1
                continue
            keep = job.keep_alive and not self.draining
            if res.kind == "ok":
                conn.write_response(200, res.body, res.content_type,
                                    (self._variant_header, ("x-amzn-RequestId", str(uuid.uuid4()))), keep)
                self.counts["200"] += 1
                if capture is not None and (self.sampling >= 100 or self._rng.random() * 100 < self.sampling):
                    capture.submit(CaptureEvent(job.arrived, job.inference_id, job.content_type, job.body,
                                                res.content_type, res.body))
            else:
                self.counts[str(res.status)] += 1
                if job.runtime:
                    self._model_error(conn, res.status, res.message, keep)
                else:
                    conn.write_response(res.status, res.body, res.content_type, (self._variant_header,), keep)

    def _timeout(self, job: Job) -> None:
        if job.done:
            return
        job.done = True
        self.inflight.pop(id(job), None)
        self.counts["timeout"] += 1
        conn = job.conn
        if conn.closed:
            return
        seconds = f"{self.limits.timeout:g}"
        keep = job.keep_alive and not self.draining
        if job.runtime:
            self._model_error(conn, 424, f"Your invocation timed out after {seconds} s while waiting for a "
                              "response from container primary.", keep, original_status=0, client=False)
        else:
            self._plain(conn, 504, f"the model did not answer within {seconds} s", keep)

    def _plain(self, conn, status: int, message: str, keep: bool, extra=()) -> None:
        conn.write_response(status, (message + "\n").encode("utf-8"), "text/plain; charset=utf-8", extra, keep)

    def _aws_error(self, conn, status: int, error_type: str, message: str, keep: bool, extra=()) -> None:
        body = json.dumps({"message": message}).encode("utf-8")
        headers = (("x-amzn-ErrorType", error_type), ("x-amzn-RequestId", str(uuid.uuid4())), *extra)
        conn.write_response(status, body, "application/json", headers, keep)

    def _model_error(self, conn, status: int, message: str, keep: bool, *,
                     original_status: int | None = None, client: bool | None = None) -> None:
        """SageMaker's ``ModelError`` shape (``OriginalStatusCode``, ``OriginalMessage``)."""
        original = status if original_status is None else original_status
        is_client = (400 <= status < 500) if client is None else client
        kind = "client" if is_client else "server"
        body = json.dumps({
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "LogStreamArn": self._log_stream,
            "Message": f"Received {kind} error ({original}) from primary with message \"{message}\". "
                       f"See the endpoint log for more information.",
            "OriginalMessage": message,
            "OriginalStatusCode": original,
        }).encode("utf-8")
        headers = (("x-amzn-ErrorType", _MODEL_ERROR), ("x-amzn-RequestId", str(uuid.uuid4())), self._variant_header)
        conn.write_response(status, body, "application/json", headers, keep)


def _valid_inference_id(value: str) -> bool:
    return 0 < len(value) <= MAX_INFERENCE_ID and not value[0].isspace() and value.isprintable()


def worker_pid_label() -> str:
    return f"worker {os.getpid()}"
