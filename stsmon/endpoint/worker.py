"""One server worker process: the endpoint's accept loop, uvicorn's HTTP/1.1
protocol (httptools' C parser, llhttp), an ASGI app, and one inference thread.

The event loop thread accepts connections (one per wakeup, balanced over the
sibling workers: :class:`stsmon.endpoint.server.ConnectionBalance`) and hands
each to :class:`EndpointProtocol`, uvicorn 0.55's ``HttpToolsProtocol`` with
what it lacks for an endpoint (a header-size limit, the slow-request and idle
timeouts, drain). uvicorn parses and frames the requests and writes the
answers; the ASGI app (:meth:`Worker.app`) answers ``/ping`` and every error
it can decide alone (404, 405, 413, validation, overload) and queues
invocations. The inference thread takes **all** queued invocations at once
(up to ``max_batch``), runs them through the model's ``input_fn`` → one
``predict_fn`` → ``output_fn`` (see :class:`stsmon.endpoint.model.InferenceHandler`)
and hands the results back to the loop, which answers and queues the capture
records. So a worker costs one core, and under concurrency the per-call
overhead of the model (input parsing, scikit-learn's checks, the estimator
call) is paid once per batch instead of once per request.

uvicorn is used without ``uvicorn.Server`` (which installs its own signal
handlers, re-raises the signal after shutdown and closes idle keep-alive
connections at once): the worker builds a ``uvicorn.Config`` and a
``ServerState`` and constructs the protocol per accepted socket, as
``uvicorn.Server.startup`` does (uvicorn/server.py, 0.55.0).

Limits, each answered, never a hang: body above ``max_body`` on the runtime
path (SageMaker's 6 MB) or ``container_max_body`` on ``/invocations`` → 413
(keep-alive kept: uvicorn's parser skips the rest of the body; a declared
length over :data:`DISCARD_LIMIT`, or ``Expect: 100-continue``, → 413 and
close); a request head over :data:`MAX_HEAD` → 431 and close; more than
``max_queue`` invocations waiting → 503 with ``Retry-After``; more than
``max_connections`` open connections → 503 and close; an invocation not
answered within ``timeout`` seconds → 504 on ``/invocations`` (424
``ModelError`` on the runtime path, as SageMaker); a request whose bytes do
not all arrive within ``timeout`` → connection closed; connections idle for
``idle_timeout`` (also never-used ones) closed. Malformed HTTP: uvicorn's
400 "Invalid HTTP request received." and close.

SIGTERM: stop accepting, answer everything already received (responses say
``connection: close``), close keep-alive connections idle for
:data:`DRAIN_IDLE_GRACE`, write and close the capture files, exit.
``drain_timeout`` bounds the wait.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from stscontracts import names

from ..clock import Clock
from .batching import Batcher
from .capture import CaptureWriter
from .capture_record import CaptureEvent
from .model import DEFAULT_ACCEPT, InferenceHandler, Result, container_request

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
#: The largest request head (request line + header lines, bytes); above: 431 and close.
#: llhttp (httptools 0.9) has no limit of its own.
MAX_HEAD = 64 * 1024
#: A body above the path's limit gets 413 with keep-alive kept (the parser skips
#: the rest, up to this size); a declared length above this gets 413 and close.
DISCARD_LIMIT = 64 * 1024 * 1024

#: SageMaker's limits.
MAX_BODY = 6 * 1024 * 1024
INVOCATION_TIMEOUT = 60.0
MAX_INFERENCE_ID = 64
MAX_CUSTOM_ATTRIBUTES = 1024

_VALIDATION = "ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/"
_MODEL_ERROR = "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"
_UNAVAILABLE = "ServiceUnavailable:http://internal.amazon.com/coral/com.amazon.sagemaker/"

_CYCLE = "stsmon.cycle"  # scope key: uvicorn's RequestResponseCycle of the request
_CLOSE = (b"connection", b"close")
_PLAIN = "text/plain; charset=utf-8"
#: The result a timed-out job's future gets (the sweep sets it).
TIMED_OUT = object()


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
    """One invocation waiting for (or in) the inference thread; ``future`` gets its Result
    (or :data:`TIMED_OUT`)."""

    __slots__ = ("body", "content_type", "program_type", "accept", "inference_id", "arrived", "deadline",
                 "done", "future")

    def __init__(self, body, content_type, program_type, accept, inference_id, arrived, deadline, future):
        self.body = body
        self.content_type = content_type  # as the client sent it (capture records it)
        self.program_type = program_type  # as the container hands it to the program
        self.accept = accept
        self.inference_id = inference_id
        self.arrived = arrived
        self.deadline = deadline
        self.done = False  # answered or timed out: the batcher skips it
        self.future = future


class _Rejected(Exception):
    """Raised in a parser callback to stop the parser: the request is refused (``rejection``)."""


class EndpointProtocol(HttpToolsProtocol):
    """uvicorn 0.55's httptools protocol, plus what an endpoint needs and it lacks
    (uvicorn/protocols/http/httptools_impl.py, 0.55.0):

    - a head-size limit: llhttp has none, so the bytes of a request head are
      counted (``on_url``/``on_header``, and whole packets that arrive while a
      head is incomplete) and a head over :data:`MAX_HEAD` gets 431 and close;
    - an HTTP/1.1 request without exactly one ``Host`` gets 400 and close (llhttp
      does not check it; RFC 9112 §3.2 says MUST);
    - timestamps for the worker's once-a-second sweep (:meth:`expired`): uvicorn
      arms its keep-alive timeout only after a response (a connection that never
      sends stays forever) and has no slow-request timeout; the sweep is the one
      timer here, so :meth:`on_response_complete` arms none;
    - :attr:`idle` for the drain.
    """

    def __init__(self, *args, worker: Worker, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.worker = worker
        self.last_active = time.monotonic()
        self.message_started = 0.0  # when the first byte of a request still arriving came; 0: none
        self.in_head = False
        # Two lower bounds of the current head's size (neither counts a byte twice or a byte of
        # another message): its parsed fields, and the packets that arrived wholly inside it.
        self.head_fields = 0
        self.head_packets = 0
        self.rejection: tuple[int, str] | None = None  # what on_headers_complete refused
        self._began = False

    # -- connection -------------------------------------------------------------

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.worker.publish()

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self.worker.publish()

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received (same version), plus the head count and the 431.
        self.last_active = time.monotonic()
        counting = self.in_head
        self._began = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.rejection is not None:
                self._reject(*self.rejection)
                return
            self.worker.counts["400 (malformed HTTP)"] += 1
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            pass  # no WebSocket here (ws="none"): uvicorn answers the request as a plain one
        if self.in_head:
            if counting and not self._began:  # the whole packet belongs to this head
                self.head_packets += len(data)
            if max(self.head_packets, self.head_fields) > MAX_HEAD:
                self._reject(431, "request header section too large")

    def _reject(self, status: int, message: str) -> None:
        """Answer a request refused while parsing, and close."""
        self.worker.counts[str(status)] += 1
        body = (message + "\n").encode()
        self.transport.write(b"%scontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (STATUS_LINE[status], len(body), body))
        self.transport.close()

    # -- parser callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self._began = True
        self.head_fields = self.head_packets = 0
        self.message_started = self.last_active

    def on_url(self, url: bytes) -> None:
        self.head_fields += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_fields += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.head_fields > MAX_HEAD:
            self.rejection = (431, "request header section too large")
        else:
            # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without
            # exactly one Host (llhttp does not check; h11 does).
            hosts = sum(1 for name, _ in self.headers if name == b"host")
            if hosts != 1 and (hosts or self.parser.get_http_version() == "1.1"):
                self.rejection = (400, "missing Host header (required in HTTP/1.1)" if not hosts
                                  else "more than one Host header")
        if self.rejection is not None:
            raise _Rejected()  # the parser stops; data_received answers
        super().on_headers_complete()
        self.scope[_CYCLE] = self.cycle  # type: ignore[typeddict-unknown-key]

    def on_message_complete(self) -> None:
        self.message_started = 0.0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # uvicorn's on_response_complete without its keep-alive timer (the sweep closes idle connections).
        self.server_state.total_requests += 1
        self.last_active = time.monotonic()
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)

    # -- for the worker -------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No request arriving, being answered or queued behind one (pipelining)."""
        return not self.message_started and (self.cycle is None or self.cycle.response_complete) \
            and not self.pipeline

    def expired(self, now: float, idle_timeout: float, request_timeout: float) -> bool:
        """Close-worthy: a request still arriving after ``request_timeout``, or idle too long."""
        if self.transport.is_closing():
            return False
        if self.message_started:
            return now - self.message_started > request_timeout
        return self.idle and now - self.last_active > idle_timeout

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


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
        # uvicorn's per-server state: its protocols add and remove themselves in ``connections``.
        self.state = ServerState()
        self.connections: set[EndpointProtocol] = self.state.connections  # type: ignore[assignment]
        self.config = uvicorn.Config(self.app, http=EndpointProtocol, ws="none", interface="asgi3",
                                     lifespan="off", access_log=False, log_config=None, log_level=logging.INFO,
                                     proxy_headers=False,
                                     server_header=False, date_header=False)
        self.inflight: dict[int, Job] = {}
        self.batcher = Batcher(handler, max_batch=limits.max_batch, batch_wait=limits.batch_wait,
                               open_connections=self.connections.__len__, deliver=self._from_batcher)
        self.draining = False
        self._done: asyncio.Future | None = None
        self._accepting = False
        self._runtime_prefix = "/endpoints/"
        self._variant_header = (b"x-amzn-invoked-production-variant", variant.encode("latin-1"))
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
        self.config.load()
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
            self._finish_tasks()
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
        # request is still answered (with connection: close), so a client that
        # sends back to back never races the close of its connection.
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.idle and now - conn.last_active >= DRAIN_IDLE_GRACE:
                conn.close()
        if not self.inflight and not self.connections:
            if not self._done.done():
                self._done.set_result(None)
            return
        if now > deadline:
            log.warning("drain timeout: closing %d connection(s) with %d invocation(s) unanswered",
                        len(self.connections), len(self.inflight))
            for conn in list(self.connections):
                conn.close()
            if not self._done.done():
                self._done.set_result(None)
            return
        self.loop.call_later(0.02, self._check_drained, deadline)

    def _finish_tasks(self) -> None:
        """Let the app's tasks end (after a drain timeout: cancel those still waiting)."""
        for job in self.inflight.values():
            job.done = True
            if not job.future.done():
                job.future.cancel()
        tasks = [t for t in self.state.tasks if not t.done()]
        if tasks:
            self.loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))

    def _shutdown(self) -> None:
        self.batcher.stop(5.0)
        log.info("inference: %d batch(es), %d invocation(s)", self.batcher.batches, self.batcher.jobs)
        if self.counts:
            log.info("answers: %s", ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())))
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
        self.publish()
        self.loop.create_task(self._attach(conn))

    def _protocol(self) -> EndpointProtocol:
        # As uvicorn.Server.startup builds it (uvicorn/server.py, 0.55.0).
        return EndpointProtocol(config=self.config, server_state=self.state, app_state={}, _loop=self.loop,
                                worker=self)

    async def _attach(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self._protocol, sock=conn)
        except OSError:
            conn.close()
        finally:
            self._attaching -= 1
            self.publish()

    def publish(self) -> None:
        if self.balance is not None:
            self.balance.publish(len(self.connections) + self._attaching)

    def _resume_accept(self) -> None:
        if self._accepting:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def _sweep(self) -> None:
        """Once a second: time out invocations, close idle and stalled connections."""
        now = time.monotonic()
        for job in list(self.inflight.values()):
            if job.deadline < now and not job.future.done():
                job.done = True
                job.future.set_result(TIMED_OUT)
        for conn in list(self.connections):
            if conn.expired(now, self.limits.idle_timeout, self.limits.timeout):
                conn.close()
        if not self._done.done():
            self.loop.call_later(1.0, self._sweep)

    # -- the ASGI app ---------------------------------------------------------------

    async def app(self, scope, receive, send) -> None:
        """ASGI 3: the container contract and the runtime API over the batcher."""
        if scope["type"] != "http":
            return
        cycle = scope[_CYCLE]
        if scope["http_version"] not in ("1.1", "1.0"):  # llhttp reads HTTP/2.0 too
            await self._plain(send, cycle, 505, "only HTTP/1.0 and HTTP/1.1 are supported", close=True)
            return
        path = scope["raw_path"].decode("latin-1")
        method = scope["method"]
        if path == "/ping":
            if method == "GET" or method == "HEAD":
                await self._respond(send, cycle, 200, b"", None)
            else:
                await self._plain(send, cycle, 405, f"method {method} is not allowed on /ping; use GET",
                                  ((b"allow", b"GET, HEAD"),))
            return
        runtime = False
        if path == "/invocations":
            pass
        elif path.startswith(self._runtime_prefix):
            parts = path.split("/")
            if len(parts) != 4 or parts[3] != "invocations" or not parts[2]:
                await self._plain(send, cycle, 404, f"no such path: {path}")
                return
            runtime = True
            name = unquote(parts[2])
            if method == "POST" and name != self.endpoint_name:
                await self._aws_error(send, cycle, 404, _VALIDATION,
                                      f"Endpoint {name} of account {self.account} not found. "
                                      f"This server serves endpoint {self.endpoint_name}.")
                return
        else:
            await self._plain(send, cycle, 404, f"no such path: {path} (try POST /invocations or GET /ping)")
            return
        if method != "POST":
            msg = f"method {method} is not allowed on {path}; use POST"
            if runtime:
                await self._aws_error(send, cycle, 405, _VALIDATION, msg, ((b"allow", b"POST"),))
            else:
                await self._plain(send, cycle, 405, msg, ((b"allow", b"POST"),))
            return
        await self._invoke(scope, receive, send, cycle, runtime)

    async def _too_large(self, send, cycle, runtime: bool, close: bool) -> None:
        limit = self.limits.max_body if runtime else self.limits.container_max_body
        msg = f"request body is larger than the {limit} byte limit"
        self.counts["413"] += 1
        if runtime:
            await self._aws_error(send, cycle, 413, _VALIDATION, msg, close=close)
        else:
            await self._plain(send, cycle, 413, msg, close=close)

    async def _invoke(self, scope, receive, send, cycle, runtime: bool) -> None:
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:  # names are lower case (uvicorn)
            key = k.decode("latin-1")
            val = v.decode("latin-1")
            headers[key] = headers[key] + ", " + val if key in headers else val
        te = headers.get("transfer-encoding")
        if te is not None and te.lower() != "chunked":  # llhttp frames "gzip, chunked" as chunked; nothing decodes gzip
            self.counts["501"] += 1
            await self._plain(send, cycle, 501, f"transfer encoding {te!r} is not supported (only chunked)")
            return
        # The body limit: SageMaker's (6 MB) on the runtime path; on the container path the
        # container's own, none (up to container_max_body) - its program judges the size.
        limit = self.limits.max_body if runtime else self.limits.container_max_body
        declared = headers.get("content-length")
        if declared is not None and int(declared) > limit:  # llhttp accepts only digits, once
            # Answered without reading: uvicorn's parser skips the body and keeps framing,
            # unless the client waits for 100 Continue (it never comes: close).
            await self._too_large(send, cycle, runtime, close=int(declared) > DISCARD_LIMIT)
            return
        message = await receive()
        if message["type"] != "http.request":
            self.counts["client gone"] += 1
            return
        body = message["body"]
        if message.get("more_body"):
            parts = [body]
            size = len(body)
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    self.counts["client gone"] += 1
                    return
                size += len(message["body"])
                if size > DISCARD_LIMIT:
                    await self._too_large(send, cycle, runtime, close=True)
                    return
                if size > limit:
                    parts = None  # read on and drop: 413 once the body has ended
                elif parts is not None:
                    parts.append(message["body"])
                if not message.get("more_body"):
                    break
            if parts is None:
                await self._too_large(send, cycle, runtime, close=False)
                return
            body = b"".join(parts)
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
                await self._aws_error(send, cycle, 400, _VALIDATION, problem)
            else:
                await self._plain(send, cycle, 400, problem)
            return
        if len(self.batcher) >= self.limits.max_queue:
            self.counts["503"] += 1
            msg = "the endpoint is overloaded; retry after 1 second"
            extra = ((b"retry-after", b"1"),)
            if runtime:
                await self._aws_error(send, cycle, 503, _UNAVAILABLE, msg, extra)
            else:
                await self._plain(send, cycle, 503, msg, extra)
            return
        program_type, accept = container_request(headers, self.default_accept)
        job = Job(body, headers.get("content-type", ""), program_type, accept, inference_id,
                  self.clock.now().timestamp(), time.monotonic() + self.limits.timeout, self.loop.create_future())
        key = id(job)
        self.inflight[key] = job
        self.batcher.submit(job)
        try:
            res = await job.future
        finally:
            job.done = True
            del self.inflight[key]
        if cycle.disconnected:  # the client left before its answer: no answer, no capture record
            self.counts["client gone"] += 1
            return
        if res is TIMED_OUT:
            self.counts["timeout"] += 1
            seconds = f"{self.limits.timeout:g}"
            if runtime:
                await self._model_error(send, cycle, 424, f"Your invocation timed out after {seconds} s while "
                                        "waiting for a response from container primary.", original_status=0,
                                        client=False)
            else:
                await self._plain(send, cycle, 504, f"the model did not answer within {seconds} s")
            return
        if res.kind == "ok":
            await self._respond(send, cycle, 200, res.body, res.content_type,
                                (self._variant_header, (b"x-amzn-requestid", str(uuid.uuid4()).encode())))
            self.counts["200"] += 1
            capture = self.capture
            if capture is not None and (self.sampling >= 100 or self._rng.random() * 100 < self.sampling):
                capture.submit(CaptureEvent(job.arrived, job.inference_id, job.content_type, job.body,
                                            res.content_type, res.body))
        else:
            self.counts[str(res.status)] += 1
            if runtime:
                await self._model_error(send, cycle, res.status, res.message)
            else:
                await self._respond(send, cycle, res.status, res.body, res.content_type, (self._variant_header,))

    # -- inference thread -------------------------------------------------------

    def _from_batcher(self, jobs: list[Job], results) -> None:
        """Called in the inference thread: answer on the loop."""
        self.loop.call_soon_threadsafe(_deliver, jobs, results)

    # -- answering --------------------------------------------------------------

    async def _respond(self, send, cycle, status: int, body: bytes, content_type: str | None, extra=(),
                       close: bool = False) -> None:
        """One response. ``connection: close`` (uvicorn then closes after it) when asked, while
        draining, and when the client waits for ``100 Continue`` that never came (the body was not read)."""
        headers = [(b"content-length", b"%d" % len(body))]
        if content_type:
            headers.append((b"content-type", content_type.encode("latin-1")))
        headers.extend(extra)
        if close or self.draining or cycle.waiting_for_100_continue:
            headers.append(_CLOSE)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _plain(self, send, cycle, status: int, message: str, extra=(), close: bool = False) -> None:
        await self._respond(send, cycle, status, (message + "\n").encode("utf-8"), _PLAIN, extra, close)

    async def _aws_error(self, send, cycle, status: int, error_type: str, message: str, extra=(),
                         close: bool = False) -> None:
        body = json.dumps({"message": message}).encode("utf-8")
        headers = ((b"x-amzn-errortype", error_type.encode()), (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
                   *extra)
        await self._respond(send, cycle, status, body, "application/json", headers, close)

    async def _model_error(self, send, cycle, status: int, message: str, *,
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
        headers = ((b"x-amzn-errortype", _MODEL_ERROR.encode()), (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
                   self._variant_header)
        await self._respond(send, cycle, status, body, "application/json", headers)


def _deliver(jobs: list[Job], results: list[Result]) -> None:
    for job, res in zip(jobs, results):
        if not job.future.done():
            job.future.set_result(res)


def _valid_inference_id(value: str) -> bool:
    return 0 < len(value) <= MAX_INFERENCE_ID and not value[0].isspace() and value.isprintable()

