"""The endpoint under an independent load generator, against the model's own compute limit, one run.

Server: ``python -m stsmon.endpoint serve`` (uvicorn 0.55's httptools protocol
behind the endpoint's pre-fork, connection balancing, dynamic batching
``stsmon.endpoint.batching.Batcher`` and capture writer), data capture on,
100 % sampling, one worker per core, the package's container environment.
Until commit 7def9be the endpoint's HTTP layer was hand-written and this
script compared it with uvicorn + httptools doing the same batching
(``bench/asgi_endpoint.py``, since deleted: the endpoint *is* that server
now); the figures that decided the move are in docs/endpoint.md.

Load: wrk (``apt-get install wrk``), an independent C load generator, on
loopback: ``--duration`` seconds per phase at each ``--concurrency`` (keep-alive
connections, 2 threads), one CSV pair per request from the test split, a unique
``X-Amzn-SageMaker-Inference-Id`` per request (a Lua script). After each server
stops (SIGTERM, drained), the capture check: every inference id unique, at
least one record per 200 wrk counted, at most one per connection more (wrk
stops with requests in flight that the server still answers and captures),
no bad lines.

Compute limit: ``--workers`` processes load the model with the same container
environment and call ``InferenceHandler.infer`` (what a worker's batcher calls:
the package's ``batch_transform_fn``, parse + one predict + answer) in a loop
on batches of 1, 2, 4, 8, 16 pairs, no HTTP, no capture; pairs/s summed over
the processes.

The machine is shared: every round runs the server and the compute limit
alternately, the order flipping each round; medians over ``--rounds`` are
reported next to the individual figures.

    python bench/server_compare.py --model MODEL_DIR [--pairs test.csv] [--rounds 3] [--duration 8]
        [--concurrency 8 16 32] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from pipeline_code.serving_env import serving_environment  # noqa: E402
from bench.endpoint_load import free_port, tree_cpu_seconds  # noqa: E402
from stsmon.endpoint.capture import scan_capture  # noqa: E402
from stsmon.endpoint.worker import WorkerLimits  # noqa: E402

WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("STSMON_WRK_BODIES")) do bodies[#bodies + 1] = line .. "\n" end
local prefix = os.getenv("STSMON_WRK_PREFIX")
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  n = 0
  statuses = {}
end
function request()
  n = n + 1
  return wrk.format("POST", "/invocations", {["Content-Type"] = "text/csv", ["Accept"] = "text/csv",
    ["X-Amzn-SageMaker-Inference-Id"] = prefix .. tid .. "-" .. n}, bodies[(n + tid * 7919) % #bodies + 1])
end
function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end
function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do counts[k] = (counts[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(counts) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
  local e = summary.errors
  io.write(string.format('STSMON_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ", ")))
end
"""

COMPUTE_CHILD = r"""
import os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from stsmon.endpoint.model import InferenceHandler
model, bodies_file = Path(sys.argv[2]), sys.argv[3]
env = {k: v for k, v in os.environ.items() if k.startswith(("SAGEMAKER_", "OMP_", "OPENBLAS_", "MKL_"))}
handler = InferenceHandler.load(model, env, max_batch=64)
bodies = [line.encode() + b"\n" for line in Path(bodies_file).read_text(encoding="utf-8").splitlines()]
handler.infer([(bodies[0], "text/csv", "text/csv")])  # warm
print("loaded", flush=True)
i = 0
for line in sys.stdin:  # "BATCH SECONDS": run, answer pairs/s
    batch, duration = int(line.split()[0]), float(line.split()[1])
    pairs = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    while time.perf_counter() - t0 < duration:
        results = handler.infer([(bodies[(i + k) % len(bodies)], "text/csv", "text/csv") for k in range(batch)])
        assert all(r.status == 200 for r in results), results[0]
        i += batch
        pairs += batch
    print(pairs / (time.perf_counter() - t0), (time.process_time() - c0) * 1000 / pairs, flush=True)
"""


def read_bodies(path: Path, limit: int = 2000) -> list[str]:
    """One CSV line per pair of a split file (``label,sentence1,sentence2``), without its newline."""
    bodies = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) != 3 or row[0] == "label":
                continue
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow(row[1:])
            if "\n" not in buf.getvalue() and "\r" not in buf.getvalue():
                bodies.append(buf.getvalue())
            if len(bodies) >= limit:
                break
    if not bodies:
        raise SystemExit(f"no pairs in {path}")
    return bodies




class Server:
    def __init__(self, kind: str, model: Path, workers: int, capture_dir: Path, batch_wait: float, log: Path):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env_args = [a for k, v in serving_environment().items() for a in ("--env", f"{k}={v}")]
        argv = [sys.executable, "-m", "stsmon.endpoint", "serve", "--name", "bench", "--model", str(model),
                "--port", str(self.port), "--workers", str(workers), "--capture-dir", str(capture_dir),
                "--batch-wait", str(batch_wait), *env_args]
        ready = b"in service at"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT,
                                     start_new_session=True)
        deadline = time.monotonic() + 300
        line = b""
        while ready not in line:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise SystemExit(f"{kind} server exited with {self.proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{kind} server not ready after 300 s; see {log}")

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)  # the master drains its workers
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def run_wrk(url: str, script: Path, bodies_file: Path, prefix: str, connections: int, duration: float) -> dict:
    env = dict(os.environ, STSMON_WRK_BODIES=str(bodies_file), STSMON_WRK_PREFIX=prefix)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s",
                          "-s", str(script), url], env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("STSMON_JSON "))
    data = json.loads(line.removeprefix("STSMON_JSON "))
    ok = data["statuses"].get("200", 0)
    return {"ok": ok, "requests": data["requests"], "rps": ok / (data["duration_us"] / 1e6),
            "p50_ms": data["p50_us"] / 1000, "p99_ms": data["p99_us"] / 1000, "errors": data["errors"],
            "statuses": data["statuses"], "connections": connections, "prefix": prefix}


def capture_check(capture_dir: Path, phases: list[dict]) -> dict:
    scan = scan_capture(capture_dir)
    ids = [r["eventMetadata"].get("inferenceId") for r in scan.records]
    problems = []
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} duplicate inference ids")
    if scan.bad_lines or scan.incomplete_last_lines:
        problems.append(f"{scan.bad_lines} bad, {scan.incomplete_last_lines} incomplete lines")
    for ph in phases:
        got = sum(1 for i in ids if i and i.startswith(ph["prefix"]))
        ph["captured"] = got
        if not ph["ok"] <= got <= ph["ok"] + ph["connections"]:
            problems.append(f"{ph['prefix']}: {got} records for {ph['ok']} answered")
    return {"records": len(ids), "ok": not problems, "problems": problems}


def compute_limit(model: Path, bodies_file: Path, workers: int, batches: list[int], duration: float) -> dict:
    """Per batch size: (pairs/s of ``workers`` processes calling ``InferenceHandler.infer`` at
    once, their mean CPU ms per pair)."""
    env = {**os.environ, **serving_environment(), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", COMPUTE_CHILD, str(ROOT), str(model), str(bodies_file)],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    try:
        for p in procs:
            if p.stdout.readline().strip() != "loaded":
                raise SystemExit("compute-limit child failed to load the model")
        out = {}
        for b in batches:
            for p in procs:
                p.stdin.write(f"{b} {duration}\n")
                p.stdin.flush()
            answers = [p.stdout.readline().split() for p in procs]
            out[b] = (sum(float(a[0]) for a in answers), statistics.fmean(float(a[1]) for a in answers))
        return out
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--pairs", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--batch-wait", type=float, default=WorkerLimits.batch_wait)
    p.add_argument("--compute-batches", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    args.servers = ["stsmon"]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    args.model = args.model.resolve()
    pairs = args.pairs or args.model.parent / "test" / "test.csv"
    tmp = Path(tempfile.mkdtemp(prefix="stsmon-compare-"))
    bodies_file = tmp / "bodies.txt"
    bodies_file.write_text("\n".join(read_bodies(pairs)) + "\n", encoding="utf-8")
    script = tmp / "invocations.lua"
    script.write_text(WRK_SCRIPT)
    rows: list[dict] = []
    compute: list[dict] = []
    checks: list[dict] = []
    load0 = os.getloadavg()
    try:
        for rnd in range(args.rounds):
            order = args.servers if rnd % 2 == 0 else list(reversed(args.servers))
            steps = [*order, "compute"] if rnd % 2 == 0 else ["compute", *order]
            for kind in steps:
                if kind == "compute":
                    for b, (pps, cpu) in compute_limit(args.model, bodies_file, args.workers, args.compute_batches,
                                                       args.duration / 2).items():
                        compute.append({"round": rnd, "batch": b, "pairs_per_s": pps, "cpu_ms_per_pair": cpu})
                        print(json.dumps(compute[-1]), file=sys.stderr, flush=True)
                    continue
                capture_dir = tmp / f"capture-{kind}-{rnd}"
                server = Server(kind, args.model, args.workers, capture_dir, args.batch_wait, tmp / f"{kind}.log")
                phases = []
                try:
                    warm = run_wrk(server.url, script, bodies_file, f"w{rnd}{kind}-", 8, 2)
                    warm["phase"] = "warm-up"
                    phases.append(warm)
                    for c in args.concurrency:
                        cpu0 = tree_cpu_seconds(server.proc.pid)
                        res = run_wrk(server.url, script, bodies_file, f"r{rnd}{kind}c{c}-", c, args.duration)
                        cpu = tree_cpu_seconds(server.proc.pid) - cpu0
                        res.update(server=kind, round=rnd, phase=f"c={c}", cpu_ms_per_request=cpu * 1000 / max(res["ok"], 1))
                        phases.append(res)
                        rows.append(res)
                        print(json.dumps(res), file=sys.stderr, flush=True)
                finally:
                    server.stop()
                check = capture_check(capture_dir, phases)
                check.update(server=kind, round=rnd)
                checks.append(check)
                print(json.dumps(check), file=sys.stderr, flush=True)
                shutil.rmtree(capture_dir, ignore_errors=True)
        logs = {kind: (tmp / f"{kind}.log").read_text(errors="replace") for kind in args.servers}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    cores = os.cpu_count() or 1
    print(f"\n{cores} cores, shared machine (load average before: {load0[0]:.1f}, after: "
          f"{os.getloadavg()[0]:.1f}); {args.rounds} rounds, server and compute limit alternating, "
          f"{args.duration:g} s per phase; "
          f"wrk -t2; capture on; batch_wait {args.batch_wait:g} s. req/s depends on the CPU share the "
          "server gets next to other jobs; CPU ms per request (server processes, from /proc) does not.\n")
    print("| server | connections | req/s, median | req/s per round | server CPU ms/req, median | per round "
          "| p50 ms | p99 ms | non-200 / socket errors |")
    print("|---|---:|---:|---|---:|---|---:|---:|---:|")
    medians, cpu_med = {}, {}
    for kind in args.servers:
        for c in args.concurrency:
            rs = [r for r in rows if r["server"] == kind and r["phase"] == f"c={c}"]
            medians[(kind, c)] = med([r["rps"] for r in rs])
            cpu_med[(kind, c)] = med([r["cpu_ms_per_request"] for r in rs])
            bad = sum(r["requests"] - r["ok"] for r in rs)
            errs = sum(v for r in rs for v in r["errors"].values())
            per_round = " / ".join(f"{r['rps']:.0f}" for r in rs)
            cpu_round = " / ".join(f"{r['cpu_ms_per_request']:.2f}" for r in rs)
            print(f"| {kind} | {c} | {medians[(kind, c)]:.0f} | {per_round} | {cpu_med[(kind, c)]:.2f} | {cpu_round} | "
                  f"{med([r['p50_ms'] for r in rs]):.2f} | {med([r['p99_ms'] for r in rs]):.2f} | {bad} / {errs} |")
    print("\n| compute limit: pairs per call | pairs/s, median | per round | CPU ms per pair, median "
          f"| = pairs/s on {cores} whole cores |")
    print("|---:|---:|---|---:|---:|")
    limits = {}
    for b in args.compute_batches:
        cs = [c for c in compute if c["batch"] == b]
        cpu = med([c["cpu_ms_per_pair"] for c in cs])
        limits[b] = cores * 1000 / cpu
        print(f"| {b} | {med([c['pairs_per_s'] for c in cs]):.0f} | "
              f"{' / '.join(str(round(c['pairs_per_s'])) for c in cs)} | {cpu:.3f} | {limits[b]:.0f} |")
    # A phase with c connections over the workers batches at most c / workers pairs per call:
    # its limit is the compute limit at that batch size.
    print(f"\nServed pairs/s on {cores} whole cores at the measured server CPU per request, as a share of the "
          "compute limit at the batch size the phase allows (connections / workers):")
    for k in args.servers:
        parts = []
        for c in args.concurrency:
            b = max((x for x in limits if x <= max(1, c // args.workers)), default=None)
            if b is not None:
                parts.append(f"{c} connections: {cores * 1000 / cpu_med[(k, c)]:.0f} of {limits[b]:.0f} "
                             f"(batch {b}) = {cores * 1000 / cpu_med[(k, c)] / limits[b] * 100:.0f} %")
        print(f"- {k}: " + "; ".join(parts))
    verdicts = [f"{c['server']} r{c['round']} " + ("PASS" if c["ok"] else f"FAIL {c['problems']}")
                + f" ({c['records']} records)" for c in checks]
    print("\nCapture checks: " + ", ".join(verdicts))
    for kind, text in logs.items():
        lines = [line.split(": ", 1)[-1] for line in text.splitlines()
                 if "batch(es)" in line or "answers: " in line]
        if lines:
            print(f"\n{kind} workers at exit:\n  " + "\n  ".join(lines))
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": rows, "compute": compute, "checks": checks}, indent=2))
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
