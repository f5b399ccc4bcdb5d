"""Load benchmark of the local endpoint against a Flask/gunicorn baseline.

One real model, served by:

- ``stsmon`` — ``python -m stsmon.endpoint serve`` (one worker per core) with
  the model package's container environment (``pipeline_code/serving_env.py``:
  one OpenMP/BLAS thread per worker), with data capture on (100 % sampling)
  and off;
- ``gunicorn (SageMaker-like)`` — Flask under gunicorn, one sync worker per
  core, environment untouched (``model_fn`` still caps its thread's pools);
- ``gunicorn (1 thread)`` — the same with ``OMP_NUM_THREADS=1`` etc., the
  fair baseline (one worker per core, one OpenMP thread each, as stsmon's
  workers have).

The image's own serving stack (sagemaker-containers, gevent workers) is
measured by ``bench/real_serving_threads.py``.

Each server gets, from this (second) process on loopback, 2,400 requests at a
steady rate, then 2,400 at full speed with 8, 16 and 32 concurrent
keep-alive clients (one CSV pair per request, from the test split). Reported:
throughput, p50/p99 latency, errors, and server CPU per request. For capture
runs, the count check: after the server drains (SIGTERM), exactly one valid
capture record per acknowledged request, all inference ids unique, none for
an unacknowledged one. Finally an overload run (600 clients, small queue):
every request answered, 503s carry ``Retry-After``.

    python bench/endpoint_load.py --model MODEL_DIR [--pairs test.csv] [--rate 100] [--json-out FILE]

``MODEL_DIR``: an extracted model (``model.joblib`` + ``code/``), e.g. from
``processing_scripts/train.py`` (see docs/endpoint.md). Prints a markdown table.
The machine may be shared: run it more than once and compare.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from loadgen import LoadResult, run_load  # noqa: E402

from pipeline_code.serving_env import serving_environment  # noqa: E402
from stsmon.endpoint.capture import scan_capture  # noqa: E402

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_bodies(path: Path, limit: int = 2000) -> list[bytes]:
    """One CSV request body per pair of a split file (``label,sentence1,sentence2``)."""
    bodies = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) != 3:
                continue
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(row[1:])
            bodies.append(buf.getvalue().encode())
            if len(bodies) >= limit:
                break
    if not bodies:
        raise SystemExit(f"no pairs in {path}")
    return bodies


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user+system) of ``pid`` and its children, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ppid, pgid = int(fields[1]), int(fields[2])
        if int(entry) == pid or ppid == pid or pgid == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wait_ping(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer /ping")


class Server:
    def __init__(self, label: str, argv: list[str], env: dict, port: int, capture_dir: Path | None = None):
        self.label = label
        self.url = f"http://127.0.0.1:{port}"
        self.capture_dir = capture_dir
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True, cwd=ROOT)
        wait_ping(self.url, self.proc)

    def cpu(self) -> float:
        return tree_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_stsmon(model: Path, workers: int, capture_dir: Path | None, max_queue: int | None = None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "stsmon.endpoint", "serve", "--model", str(model), "--port", str(port),
            "--workers", str(workers), "--name", "bench"]
    # The model package's container environment (thread caps, default Accept), as stsmon deploy serves it.
    for key, value in serving_environment().items():
        argv += ["--env", f"{key}={value}"]
    if capture_dir is not None:
        argv += ["--capture-dir", str(capture_dir)]
    if max_queue is not None:
        argv += ["--max-queue", str(max_queue)]
    label = "stsmon, capture on" if capture_dir else "stsmon, capture off"
    return Server(label, argv, dict(os.environ), port, capture_dir)


def start_gunicorn(model: Path, workers: int, one_thread: bool) -> Server:
    port = free_port()
    env = dict(os.environ, STSMON_BASELINE_MODEL_DIR=str(model))
    for var in THREAD_VARS:
        env.pop(var, None)
        if one_thread:
            env[var] = "1"
    argv = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
            "--chdir", str(HERE / "baseline_server"), "--log-level", "warning", "--timeout", "120", "app:app"]
    return Server("gunicorn (1 thread)" if one_thread else "gunicorn (SageMaker-like)", argv, env, port)


def measure(server: Server, bodies: list[bytes], *, total: int, concurrency: int, rate: float | None,
            prefix: str) -> tuple[LoadResult, float]:
    cpu0 = server.cpu()
    res = asyncio.run(run_load(server.url, bodies, total=total, concurrency=concurrency, rate=rate,
                               id_prefix=prefix))
    cpu = server.cpu() - cpu0
    return res, cpu


def count_check(capture_dir: Path, acked: set[str], sent_prefixes: list[str]) -> dict:
    """After the server stopped: one valid record per acknowledged id, unique, no extras."""
    scan = scan_capture(capture_dir)
    ids = [r["eventMetadata"].get("inferenceId") for r in scan.records]
    ours = [i for i in ids if i and i.startswith(tuple(sent_prefixes))]
    unique = len(ours) == len(set(ours))
    missing = acked - set(ours)
    extra = set(ours) - acked
    return {"records": len(ours), "acknowledged": len(acked), "unique": unique, "missing": len(missing),
            "extra": len(extra), "bad_lines": scan.bad_lines, "incomplete_lines": scan.incomplete_last_lines,
            "ok": unique and not missing and not extra and scan.bad_lines == 0 and scan.incomplete_last_lines == 0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="extracted model folder (model.joblib + code/)")
    p.add_argument("--pairs", type=Path, default=None, help="split CSV to send (default: MODEL/../test/test.csv)")
    p.add_argument("--requests", type=int, default=2400)
    p.add_argument("--rate", type=float, default=100.0, help="steady phase rate, requests/s (default 100)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--servers", nargs="+", default=["stsmon-capture", "stsmon", "gunicorn-1thread", "gunicorn"],
                   choices=["stsmon-capture", "stsmon", "gunicorn-1thread", "gunicorn"])
    p.add_argument("--skip-overload", action="store_true")
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    pairs = args.pairs or args.model.parent / "test" / "test.csv"
    bodies = read_bodies(pairs)
    rows: list[dict] = []
    checks: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="stsmon-bench-"))
    phases = [("steady", None, args.rate), *[(f"c={c}", c, None) for c in args.concurrency]]
    try:
        for key in args.servers:
            capture_dir = tmp / f"capture-{key}" if key == "stsmon-capture" else None
            if key.startswith("stsmon"):
                server = start_stsmon(args.model, args.workers, capture_dir)
            else:
                server = start_gunicorn(args.model, args.workers, one_thread=key == "gunicorn-1thread")
            acked: set[str] = set()
            prefixes = []
            try:
                measure(server, bodies, total=200, concurrency=8, rate=None, prefix=f"warm-{key}-")  # warm-up
                prefixes.append(f"warm-{key}-")
                for name, conc, rate in phases:
                    # Open-loop steady phase: enough clients that the schedule, not the server, sets the pace.
                    clients = conc or max(8, int(rate * 0.5))
                    prefix = f"{key}-{name}-"
                    res, cpu = measure(server, bodies, total=args.requests, concurrency=clients, rate=rate,
                                       prefix=prefix)
                    prefixes.append(prefix)
                    acked.update(res.acked_ids)
                    s = res.summary()
                    row = {"server": server.label, "phase": name, **s,
                           "cpu_ms_per_request": round(cpu * 1000 / max(res.ok, 1), 2)}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
            finally:
                server.stop()
            if capture_dir is not None:
                # The warm-up ids count too: every acknowledged request must be captured.
                warm = {i for i in (r["eventMetadata"].get("inferenceId") for r in scan_capture(capture_dir).records)
                        if i and i.startswith(f"warm-{key}-")}
                check = count_check(capture_dir, acked | warm, prefixes)
                check["server"] = server.label
                checks.append(check)
        overload = None
        if not args.skip_overload:
            server = start_stsmon(args.model, args.workers, None, max_queue=32)
            try:
                res, _cpu = measure(server, bodies, total=3000, concurrency=600, rate=None, prefix="overload-")
            finally:
                server.stop()
            overload = {"requests": res.sent, "answered": sum(res.statuses.values()), "errors": res.errors,
                        "statuses": res.summary()["statuses"], "503_without_retry_after": res.retry_after_missing,
                        "p99_ms": res.summary()["p99_ms"], "elapsed_s": round(res.elapsed, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nModel: {args.model}; {len(bodies)} distinct pairs from {pairs}; {args.workers} workers per server; "
          f"{os.cpu_count()} cores (shared machine).\n")
    print("| server | phase | requests | ok | errors | throughput (req/s) | p50 (ms) | p99 (ms) | server CPU (ms/req) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['server']} | {r['phase']} | {r['sent']} | {r['ok']} | {r['errors'] + r['sent'] - r['ok']} | "
              f"{r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['cpu_ms_per_request']} |")
    if checks:
        print("\n| capture count check | acknowledged | records | missing | extra | unique ids | bad lines | result |")
        print("|---|---:|---:|---:|---:|---|---:|---|")
        for c in checks:
            print(f"| {c['server']} | {c['acknowledged']} | {c['records']} | {c['missing']} | {c['extra']} | "
                  f"{c['unique']} | {c['bad_lines'] + c['incomplete_lines']} | {'PASS' if c['ok'] else 'FAIL'} |")
    by = {(r["server"], r["phase"]): r for r in rows}
    comparisons = []
    for conc in args.concurrency:
        ph = f"c={conc}"
        ours = by.get(("stsmon, capture on", ph)) or by.get(("stsmon, capture off", ph))
        off = by.get(("stsmon, capture off", ph))
        on = by.get(("stsmon, capture on", ph))
        for base_label in ("gunicorn (1 thread)", "gunicorn (SageMaker-like)"):
            base = by.get((base_label, ph))
            if ours and base:
                comparisons.append((ph, f"{ours['server']} vs {base_label}",
                                    f"{ours['throughput_rps'] / max(base['throughput_rps'], 1e-9):.2f}x throughput, "
                                    f"p99 {ours['p99_ms']} vs {base['p99_ms']} ms"))
        if on and off:
            comparisons.append((ph, "capture cost", f"{(1 - on['throughput_rps'] / off['throughput_rps']) * 100:.1f} % "
                                f"throughput, CPU {on['cpu_ms_per_request']} vs {off['cpu_ms_per_request']} ms/req"))
    if comparisons:
        print("\n| phase | comparison | result |")
        print("|---|---|---|")
        for ph, what, result in comparisons:
            print(f"| {ph} | {what} | {result} |")
    if overload:
        print(f"\nOverload (600 clients, queue 32 per worker): {overload['answered']} of {overload['requests']} answered, "
              f"{overload['errors']} connection errors, statuses {overload['statuses']}, "
              f"503 without Retry-After: {overload['503_without_retry_after']}, p99 {overload['p99_ms']} ms.")
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": rows, "capture_checks": checks, "overload": overload}, indent=2))
    failed = [c for c in checks if not c["ok"]]
    return 1 if failed or (overload and (overload["errors"] or overload["503_without_retry_after"])) else 0


if __name__ == "__main__":
    sys.exit(main())
