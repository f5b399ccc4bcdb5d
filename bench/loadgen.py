"""A light HTTP load generator for the endpoint benchmarks (asyncio, raw sockets).

Keeps client cost per request far below a boto3 call (the server, not the
client, should be what is measured on a shared 2-core machine). Each client
holds one keep-alive connection and sends ``POST {path}`` requests with a
unique ``X-Amzn-SageMaker-Inference-Id``; a request counts as acknowledged
when its full response has been read.

Used by ``bench/endpoint_load.py``; run alone for a quick look::

    python bench/loadgen.py http://127.0.0.1:8080 --requests 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse


@dataclass
class LoadResult:
    """Outcome of one load run (latencies in seconds)."""

    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # connection errors / timeouts
    latencies: list[float] = field(default_factory=list)
    acked_ids: list[str] = field(default_factory=list)  # inference ids answered 200
    acked_at: list[float] = field(default_factory=list)  # wall-clock time of each 200 (time.time())
    elapsed: float = 0.0
    retry_after_missing: int = 0  # 503 answers without Retry-After

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        k = min(len(data) - 1, max(0, int(round(q / 100 * (len(data) - 1)))))
        return data[k]

    def summary(self) -> dict:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2) if self.latencies else None,
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return status, headers, body


async def run_load(
    url: str,
    bodies: list[bytes],
    *,
    total: int,
    concurrency: int,
    rate: float | None = None,
    path: str = "/invocations",
    content_type: str = "text/csv",
    accept: str = "text/csv",
    id_prefix: str = "bench-",
    timeout: float = 70.0,
    stop: asyncio.Event | None = None,
) -> LoadResult:
    """Send ``total`` requests from ``concurrency`` clients (``rate``: overall
    requests/second, open-loop schedule; None: as fast as answers come back)."""
    u = urlparse(url)
    host, port = u.hostname, u.port or 80
    res = LoadResult()
    counter = iter(range(total))
    start = time.perf_counter()

    def request_bytes(n: int) -> bytes:
        body = bodies[n % len(bodies)]
        return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
                f"Accept: {accept}\r\nX-Amzn-SageMaker-Inference-Id: {id_prefix}{n}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def client() -> None:
        reader = writer = None
        for n in counter:
            if stop is not None and stop.is_set():
                break
            if rate:
                due = start + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            data = request_bytes(n)
            t0 = time.perf_counter()
            res.sent += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(data)
                status, headers, _body = await asyncio.wait_for(_read_response(reader), timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                res.errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            res.latencies.append(time.perf_counter() - t0)
            res.statuses[status] = res.statuses.get(status, 0) + 1
            if status == 200:
                res.acked_ids.append(f"{id_prefix}{n}")
                res.acked_at.append(time.time())
            elif status == 503 and "retry-after" not in headers:
                res.retry_after_missing += 1
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    res.elapsed = time.perf_counter() - start
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=None)
    p.add_argument("--path", default="/invocations")
    args = p.parse_args(argv)
    bodies = [b"the cat sat on the mat,a cat sat on a mat\n", b"stocks fell sharply,shares dropped a lot\n"]
    res = asyncio.run(run_load(args.url, bodies, total=args.requests, concurrency=args.concurrency,
                               rate=args.rate, path=args.path))
    json.dump(res.summary(), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
