"""A small, strict HTTP/1.1 server protocol for asyncio.

Only what an inference endpoint needs, written for speed: keep-alive,
``Content-Length`` and chunked bodies, ``Expect: 100-continue``, pipelined
requests answered in order (one at a time per connection), a body limit
(413 after reading and discarding up to :data:`DISCARD_LIMIT` bytes, so the
client sees the answer instead of a reset), a header limit (431), and idle /
slow-request timeouts enforced by the owner's periodic sweep
(:meth:`HttpConnection.expired`). Malformed requests get a 400 and the
connection is closed.

The owner (:class:`stsmon.endpoint.worker.Worker`) implements
``dispatch(conn, request)``, ``too_large(conn, request)``, optionally
``body_limit(target)`` (the body limit of a request, else ``max_body``),
``connection_lost(conn)`` and answers through :meth:`HttpConnection.respond`.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

MAX_HEAD = 64 * 1024
#: A body above the limit is read and thrown away up to this size, then 413;
#: a declared length above this gets 413 at once and the connection closes.
DISCARD_LIMIT = 64 * 1024 * 1024

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    424: "Failed Dependency",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}

# The grammar of RFC 9112 as h11 (0.16, h11/_abnf.py) reads it; the framing tests
# (tests/stsmon/endpoint/test_http_framing.py) fuzz ours against h11.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])")
_HEADER_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_DIGITS = re.compile(r"[0-9]+")
_BARE_LF = re.compile(rb"(?<!\r)\n")

_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_TRAILER, _DISCARD = range(6)


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes = b""
    keep_alive: bool = True
    content_length: int = 0


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests are handed to ``owner.dispatch`` one at a time."""

    __slots__ = (
        "owner", "transport", "buf", "state", "request", "need", "chunks", "body_size",
        "busy", "closed", "last_active", "started", "base_max_body", "max_body", "too_large", "scanned",
    )

    def __init__(self, owner, max_body: int) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = _HEAD
        self.request: Request | None = None
        self.need = 0
        self.chunks: list[bytes] = []
        self.body_size = 0
        self.busy = False  # a request is being answered
        self.closed = False
        self.last_active = time.monotonic()
        self.started = 0.0  # when the current (partial) request began, 0 when none
        self.base_max_body = max_body
        self.max_body = max_body  # of the current request (the owner's ``body_limit(target)`` when it has one)
        self.too_large = False
        self.scanned = 0  # bytes of an incomplete head already searched (each byte is searched once)

    # asyncio callbacks ----------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.owner.connection_made(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.owner.connection_lost(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if not self.started:
            self.started = self.last_active
        self.buf += data
        if not self.busy:
            self._parse()
        elif len(self.buf) > MAX_HEAD + self.max_body:
            # A pipelining client far ahead of us: stop reading until we catch up.
            self.transport.pause_reading()

    # state ------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No request in progress or buffered."""
        return not self.busy and not self.buf and self.state == _HEAD

    def expired(self, now: float, idle_timeout: float, request_timeout: float) -> bool:
        """Close-worthy: idle too long, or a request still arriving after ``request_timeout``."""
        if self.busy or self.closed:
            return False
        if self.idle:
            return now - self.last_active > idle_timeout
        return self.started and now - self.started > request_timeout

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    # parsing ------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self.buf
        while not self.busy and not self.closed:
            state = self.state
            if state == _HEAD:
                if not buf:
                    self.started = 0.0
                    return
                end = buf.find(b"\r\n\r\n", max(0, self.scanned - 3))
                if end < 0 and len(buf) <= MAX_HEAD:
                    if _BARE_LF.search(buf, self.scanned):  # a head that can never end: say so now
                        self._fail(400, "bare LF line ending (use CRLF)")
                        return
                    self.scanned = len(buf)
                    return
                self.scanned = 0
                if end < 0 or end > MAX_HEAD:
                    self._fail(431, "request header section too large")
                    return
                head = bytes(buf[:end])
                del buf[:end + 4]
                if not self._start(head):
                    return
            elif state == _BODY:
                if len(buf) < self.need:
                    return
                self.request.body = bytes(buf[:self.need])
                del buf[:self.need]
                self._complete()
            elif state == _DISCARD:
                n = min(len(buf), self.need)
                del buf[:n]
                self.need -= n
                if self.need:
                    return
                self._complete()
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        self._fail(400, "malformed chunked body")
                    return
                m = _CHUNK_LINE.fullmatch(buf, 0, end)
                if m is None:
                    self._fail(400, "malformed chunk size")
                    return
                size = int(m.group(1), 16)
                del buf[:end + 2]
                if size == 0:
                    self.state = _CHUNK_TRAILER
                    continue
                self.body_size += size
                if self.body_size > self.max_body and not self.too_large:
                    self.too_large = True
                    self.chunks.clear()
                if self.body_size > DISCARD_LIMIT:
                    self._reject_large(close=True)
                    return
                self.need = size
                self.state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if self.too_large:  # throw the data away as it comes
                    n = min(len(buf), self.need)
                    del buf[:n]
                    self.need -= n
                    if self.need or len(buf) < 2:
                        return
                elif len(buf) < self.need + 2:
                    return
                else:
                    self.chunks.append(bytes(buf[:self.need]))
                    del buf[:self.need]
                    self.need = 0
                if buf[:2] != b"\r\n":
                    self._fail(400, "malformed chunked body")
                    return
                del buf[:2]
                self.state = _CHUNK_SIZE
            elif state == _CHUNK_TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                if end > MAX_HEAD:
                    self._fail(431, "trailer section too large")
                    return
                line = bytes(buf[:end])
                del buf[:end + 2]
                if not line:  # end of trailers
                    self.request.body = b"".join(self.chunks)
                    self.chunks = []
                    self._complete()
                elif _HEADER_LINE.fullmatch(line) is None:  # trailers are read, checked and dropped
                    self._fail(400, "malformed trailer line")
                    return

    def _start(self, head: bytes) -> bool:
        """Parse a request head; set up body reading. False when the connection failed."""
        lines = head.split(b"\r\n")
        m = _REQUEST_LINE.fullmatch(lines[0])
        version = m.group(3) if m else lines[0].rpartition(b" ")[2]
        if version != b"HTTP/1.1" and version != b"HTTP/1.0" and version.startswith(b"HTTP/") and (
                m or lines[0].count(b" ") == 2):
            self._fail(505, "only HTTP/1.0 and HTTP/1.1 are supported")
            return False
        if m is None:
            self._fail(400, "malformed request line")
            return False
        method = m.group(1).decode("ascii")
        target = m.group(2).decode("ascii")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            h = _HEADER_LINE.fullmatch(line)
            if h is None:  # also obsolete line folding (RFC 9112 §5.2: 400) and bare LF
                self._fail(400, "malformed header line")
                return False
            key = h.group(1).decode("latin-1").lower()
            val = h.group(2).decode("latin-1")
            if key in headers:
                if key == "host":
                    self._fail(400, "more than one Host header")
                    return False
                if key == "content-length":
                    if headers[key] != val:
                        self._fail(400, f"conflicting {key} headers")
                        return False
                    continue
                headers[key] = headers[key] + ", " + val
            else:
                headers[key] = val
        conn = headers.get("connection", "").lower()
        if version == b"HTTP/1.1":
            keep_alive = "close" not in conn
        else:
            keep_alive = "keep-alive" in conn
        req = Request(method, target, headers, b"", keep_alive)
        self.request = req
        self.too_large = False
        limit = getattr(self.owner, "body_limit", None)
        self.max_body = limit(target) if limit is not None else self.base_max_body
        te = headers.get("transfer-encoding")
        cl = headers.get("content-length")
        if te is not None:
            if cl is not None:
                self._fail(400, "both Content-Length and Transfer-Encoding")
                return False
            if te.lower() != "chunked":
                self._fail(501, f"transfer encoding {te!r} is not supported")
                return False
        if version == b"HTTP/1.1" and "host" not in headers:
            self._fail(400, "missing Host header (required in HTTP/1.1)")
            return False
        if te is not None:
            self.chunks = []
            self.body_size = 0
            self.state = _CHUNK_SIZE
            self._continue(headers)
            return True
        if cl is None:
            length = 0
        else:
            if _DIGITS.fullmatch(cl) is None:
                self._fail(400, f"bad Content-Length {cl!r}")
                return False
            length = int(cl)
        req.content_length = length
        if length > self.max_body:
            self.too_large = True
            if length > DISCARD_LIMIT or "100-continue" in headers.get("expect", "").lower():
                self._reject_large(close=True)
                return False
            self.need = length
            self.state = _DISCARD
            return True
        if length:
            self._continue(headers)
        self.need = length
        self.state = _BODY
        return True

    def _continue(self, headers: dict[str, str]) -> None:
        if "100-continue" in headers.get("expect", "").lower():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _complete(self) -> None:
        """A whole request has arrived: hand it to the owner."""
        self.state = _HEAD
        self.need = 0
        req = self.request
        self.request = None
        self.busy = True
        if self.too_large:
            self.too_large = False
            self.owner.too_large(self, req)
        else:
            self.owner.dispatch(self, req)

    def _reject_large(self, close: bool) -> None:
        req = self.request
        self.request = None
        self.busy = True
        if close and req is not None:
            req.keep_alive = False
        self.state = _HEAD
        self.owner.too_large(self, req)

    def _fail(self, status: int, message: str) -> None:
        """Answer a protocol error and close the connection."""
        self.busy = True
        self.request = None
        body = (message + "\n").encode()
        self.write_response(status, body, "text/plain; charset=utf-8", (), keep_alive=False)

    # answering ----------------------------------------------------------------

    def write_response(self, status: int, body: bytes, content_type: str | None,
                       headers, keep_alive: bool) -> None:
        """Write one response; then close, or read the next request."""
        if self.closed:
            return
        parts = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"]
        if content_type:
            parts.append(f"Content-Type: {content_type}\r\n")
        parts.append(f"Content-Length: {len(body)}\r\n")
        for name, value in headers:
            parts.append(f"{name}: {value}\r\n")
        if not keep_alive:
            parts.append("Connection: close\r\n")
        parts.append("\r\n")
        self.transport.write("".join(parts).encode("latin-1") + body)
        self.busy = False
        self.last_active = time.monotonic()
        self.started = 0.0
        if not keep_alive:
            self.close()
            return
        if self.buf:
            self.started = self.last_active
            self.transport.resume_reading()
            self._parse()
