"""The live server's HTTP/1.1 layer: request framing against h11 as the oracle, and the
limits uvicorn's protocol does not have on its own.

The endpoint's HTTP layer is uvicorn 0.55's ``HttpToolsProtocol`` (httptools
0.9, llhttp) with a few additions (``stsmon.endpoint.worker.EndpointProtocol``;
docs/endpoint.md § "The HTTP layer"). Nothing of ours frames requests any more,
so there is no parser of ours to fuzz: these tests send fixed byte streams to
a real server (one worker, shared with test_endpoint_contract.py) and read what it answers.

Framing: a server that frames a byte stream differently from what is in
front of it is how requests get smuggled. Every request of a stream targets
an unknown path (``/t1`` ...), so the server answers each with a 404 that
names it, keep-alive: the answers show which requests the server framed, in
order. h11 0.16 (python-hyper/h11, a maintained RFC 9112 parser;
``requirements-dev.txt``) frames the same stream. Each case says what must
hold, and the test checks both h11 and the server against it:

- ``same``: both frame the same requests (the server answers exactly h11's);
- ``reject``: h11 refuses the stream; the server answers the requests before
  the bad one and then 400 and closes, never a request h11 did not frame;
- ``stricter``: h11 accepts, llhttp refuses (each a MAY/SHOULD of RFC 9112,
  listed in docs/endpoint.md): the server answers a prefix of h11's requests,
  then 400 and close.
"""

from __future__ import annotations

import re
import socket
import time

import h11
import pytest

from stsmon.endpoint.worker import MAX_HEAD

NAME = "toy-endpoint"
SIX_MB = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def server(toy_server):
    """The toy endpoint test_endpoint_contract.py also uses (one worker; none of these requests is captured:
    the pipelined invocations carry ``pipe_`` ids)."""
    assert toy_server.name == NAME
    return toy_server


def read_responses(sock: socket.socket, count: int | None = None, timeout: float = 10.0) -> tuple[list, bool]:
    """Responses read from ``sock``: ([(status, headers, body)], closed). Stops after ``count``
    responses (None: at the close). Every answer of this server has a Content-Length."""
    sock.settimeout(timeout)
    buf = b""
    out: list = []
    closed = False
    while count is None or len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            lines = buf[:end].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            if len(buf) >= end + 4 + length:
                status = int(lines[0].split(" ")[1])
                out.append((status, headers, buf[end + 4:end + 4 + length]))
                buf = buf[end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            closed = True
            break
        buf += chunk
    return out, closed


def exchange(server, data: bytes, count: int | None = None) -> tuple[list, bool]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(data)
        return read_responses(sock, count)
    finally:
        sock.close()


def h11_frames(data: bytes) -> tuple[list[str], bool]:
    """The targets of the whole requests h11 frames in ``data``, in order, and whether it refuses
    the stream."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    targets: list[str] = []
    target = ""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return targets, False
            if isinstance(event, h11.Request):
                target = event.target.decode()
            elif isinstance(event, h11.EndOfMessage):
                targets.append(target)
                conn.send(h11.Response(status_code=404, headers=[("Content-Length", "0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return targets, False
                conn.start_next_cycle()
    except h11.RemoteProtocolError:
        return targets, True


P1 = b"POST /t1 HTTP/1.1\r\nHost: h\r\n"
G2 = b"GET /t2 HTTP/1.1\r\nHost: h\r\n\r\n"
CASES = [
    # (id, stream, expectation)
    ("pipelined", P1 + b"Content-Length: 2\r\n\r\nab" + P1.replace(b"t1", b"t3") + b"Content-Length: 1\r\n\r\nc" + G2,
     "same"),
    ("chunked-body-looks-like-a-request", P1 + b"Transfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\n" + G2, "same"),
    ("chunk-extension-and-trailer",
     P1 + b"Transfer-Encoding: chunked\r\n\r\n4;x=1\r\nabcd\r\n0\r\nX-T: t\r\n\r\n" + G2, "same"),
    ("cl-and-te", P1 + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + G2, "stricter"),
    ("te-and-cl", P1 + b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + G2, "stricter"),
    ("cl-list", P1 + b"Content-Length: 3, 3\r\n\r\nabc" + G2, "stricter"),
    ("obsolete-line-folding", P1 + b"X: a\r\n b\r\nContent-Length: 1\r\n\r\na" + G2, "stricter"),
    ("bare-lf", b"GET /t1 HTTP/1.1\nHost: h\n\n" + G2, "stricter"),
    ("cl-conflicting", P1 + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" + G2, "reject"),
    ("cl-not-digits", P1 + b"Content-Length: \xb2\r\n\r\nab" + G2, "reject"),
    ("cl-negative", P1 + b"Content-Length: -1\r\n\r\n" + G2, "reject"),
    ("space-before-colon", P1 + b"Content-Length : 3\r\n\r\nabc" + G2, "reject"),
    ("te-unknown", P1 + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + G2, "reject"),
    ("te-chunked-twice", P1 + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + G2,
     "reject"),
    ("chunk-size-0x", P1 + b"Transfer-Encoding: chunked\r\n\r\n0x4\r\nabcd\r\n0\r\n\r\n" + G2, "reject"),
    ("chunk-size-plus", P1 + b"Transfer-Encoding: chunked\r\n\r\n+4\r\nabcd\r\n0\r\n\r\n" + G2, "reject"),
    ("chunk-size-underscore", P1 + b"Transfer-Encoding: chunked\r\n\r\n1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n" + G2,
     "reject"),
    ("chunk-overrun", P1 + b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n" + G2, "reject"),
    ("nul-in-value", P1 + b"Foo: a\x00b\r\nContent-Length: 0\r\n\r\n" + G2, "reject"),
    ("no-host", b"GET /t1 HTTP/1.1\r\n\r\n" + G2, "reject"),
    ("two-hosts", b"GET /t1 HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n" + G2, "reject"),
]


@pytest.mark.parametrize("data, expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_framing_agrees_with_h11(server, data, expect):
    targets, refused = h11_frames(data)
    assert refused == (expect == "reject"), (targets, refused)  # the case table is right about h11
    answers, closed = exchange(server, data, None if expect != "same" else len(targets))
    framed = [re.search(rb"no such path: (\S+)", body).group(1).decode() for status, _h, body in answers
              if status == 404]
    assert framed == targets[:len(framed)], f"the server framed requests h11 does not: {framed} vs {targets}"
    if expect == "same":
        assert framed == targets and [a[0] for a in answers] == [404] * len(targets)
    else:
        assert answers[-1][0] == 400 and closed, answers
        assert len(answers) == len(framed) + 1
        if expect == "reject":
            assert framed == targets  # everything h11 framed before the bad request, and nothing more


def test_pipelined_invocations_are_answered_in_order(server):
    def invoke(i):
        return (f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
                f"X-Amzn-SageMaker-Inference-Id: pipe_{i}\r\nContent-Length: 8\r\n\r\na b,a c\n").encode()
    data = b"".join(invoke(i) + f"GET /p{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(4))
    answers, _closed = exchange(server, data, 8)
    assert [a[0] for a in answers] == [200, 404] * 4
    assert [a[2] for a in answers[1::2]] == [f"no such path: /p{i} (try POST /invocations or GET /ping)\n".encode()
                                             for i in range(4)]
    assert all(re.fullmatch(rb"[01],[0-9.]+\n", a[2]) for a in answers[0::2])


def test_chunked_request_body(server):
    body = b"4\r\na b,\r\n4\r\na c\n\r\n0\r\n\r\n"
    answers, _ = exchange(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                                  b"Accept: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n" + body, 1)
    assert answers[0][0] == 200 and answers[0][2].count(b"\n") == 1
    # A transfer coding before chunked frames fine, but nothing here decodes it: 501, keep-alive.
    answers, _ = exchange(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                                  + body + b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", 2)
    assert [a[0] for a in answers] == [501, 200] and b"not supported" in answers[0][2]


@pytest.mark.parametrize("raw, status", [
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET /ping HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET /ping HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n", 400),
    (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400),
    (b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(70)) + b"\r\n",
     431),
], ids=["request-line", "http2", "header-line", "content-length", "gzip-te", "huge-header", "many-headers"])
def test_malformed_http_is_answered_and_closed(server, raw, status):
    answers, closed = exchange(server, raw)
    assert [a[0] for a in answers] == [status] and closed
    assert answers[0][1]["connection"] == "close"
    assert server.ping() == 200


def test_a_head_over_64_kib_arriving_slowly_gets_431_before_it_ends(server):
    """llhttp has no head limit (httptools 0.9; uvicorn 0.55 sets none): the protocol counts
    the packets of an incomplete head."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        answers: list = []
        while sent < 4 * MAX_HEAD:
            try:
                sock.sendall(b"a" * 8192)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 8192
            time.sleep(0.005)
        answers, closed = read_responses(sock)
    except ConnectionResetError:  # the close raced our last packets: the answer may be lost, but it was refused
        answers, closed = [(431, {}, b"")], True
    finally:
        sock.close()
    assert [a[0] for a in answers] == [431] and closed
    # Just under the limit is served: in one packet, and in many (no byte counted twice).
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 2000) for i in range(30)) + b"\r\n"
    assert 60000 < len(head) < MAX_HEAD
    answers, _ = exchange(server, head, 1)
    assert answers[0][0] == 200
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i in range(0, len(head), 3000):
            sock.sendall(head[i:i + 3000])
            time.sleep(0.005)
        answers, _ = read_responses(sock, 1)
    finally:
        sock.close()
    assert answers[0][0] == 200


def test_413_keeps_the_connection_usable_and_a_huge_declared_length_closes(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(f"POST /endpoints/{NAME}/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     f"Content-Length: {SIX_MB + 1}\r\n\r\n".encode() + b"a" * (SIX_MB + 1)
                     + b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        answers, closed = read_responses(sock, 2)
    finally:
        sock.close()
    assert [a[0] for a in answers] == [413, 200] and not closed
    assert answers[0][1]["x-amzn-errortype"].startswith("ValidationError") and "connection" not in answers[0][1]
    # Over 64 MiB declared: answered at once (nothing read) and closed.
    answers, closed = exchange(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                                       b"Content-Length: 100000000000\r\n\r\n")
    assert [a[0] for a in answers] == [413] and closed and answers[0][1]["connection"] == "close"


def test_expect_100_continue(server):
    """uvicorn sends ``100 Continue`` when the app reads the body (httptools_impl.py,
    ``RequestResponseCycle.receive``, 0.55.0); an answer given without reading it closes the
    connection, since the client never sends the body it was waiting to send."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 8\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"a b,a c\n")
        answers, closed = read_responses(sock, 1)
        assert answers[0][0] == 200 and not closed
    finally:
        sock.close()
    for path, length, status in [(f"/endpoints/{NAME}/invocations", SIX_MB + 1, 413), ("/nope", 8, 404)]:
        answers, closed = exchange(server, f"POST {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                           f"Content-Length: {length}\r\n\r\n".encode())
        assert [a[0] for a in answers] == [status] and closed and answers[0][1]["connection"] == "close"
