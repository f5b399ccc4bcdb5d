"""Thread caps on the SageMaker scikit-learn image's real serving stack (issue 10, fault 9).

The image serves with one gunicorn worker (gevent) per vCPU. A worker's
numeric libraries start as many threads as the machine has cores, so the
HistGradientBoosting part of the model (OpenMP) runs a pool per worker on
shared cores, which spin-wait for each other. The package caps them twice:
its container environment (``OMP_NUM_THREADS=1`` and the BLAS equivalents,
``pipeline_code/serving_env.py``) and ``model_fn`` (threadpoolctl, OpenMP and
BLAS, for the serving thread).

This serves one model package on the rebuilt image stack
(``tests/serving/realstack.py``: ``.venv-serving``, the image's ``serve``,
gunicorn + gevent, one worker per core; on loopback, not in a namespace) in
these configurations, and loads each with ``bench/loadgen.py`` (keep-alive
clients, one pair per request as ``text/csv``, ``Accept: text/csv``):

- ``before``: the package as registered before the fix - no thread variables
  in its environment and ``model_fn`` capping BLAS only (``inference.py`` of
  the model patched back to that one line);
- ``env``: the thread variables only; ``model_fn``: ``model_fn``'s cap only;
- ``package``: both (what is registered now).

    python bench/real_serving_threads.py --model MODEL.tar.gz|MODEL_DIR \\
        --pairs ../shared/data/msrp/msr_paraphrase_test.txt [--requests 1500] [--concurrency 16]

Reports throughput, p50/p99 latency, errors and server CPU per request. The
machine may be shared: say so next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "tests" / "serving")]

import realstack  # noqa: E402
from loadgen import run_load  # noqa: E402

from pipeline_code.serving_env import THREAD_VARS, serving_environment  # noqa: E402

CAP_NOW = "    threadpool_limits(limits=1)  # every API: BLAS and OpenMP\n"
CAP_BEFORE = '    threadpool_limits(limits=1, user_api="blas")\n'
CONFIGS = ("before", "env", "model_fn", "package")


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Pairs of an MSRP-layout file (tab-separated, quoting off) or a split CSV (label,s1,s2)."""
    text = path.read_text(encoding="utf-8-sig")
    if text.startswith("Quality\t"):
        rows = [line.split("\t") for line in text.splitlines()[1:] if line.strip()]
        return [(r[3], r[4]) for r in rows]
    return [(r[1], r[2]) for r in csv.reader(io.StringIO(text)) if len(r) == 3]


def csv_body(pair: tuple[str, str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(pair)
    return out.getvalue().encode()


def model_variant(model: Path, folder: Path, cap: str) -> Path:
    """An extracted copy of the model whose ``model_fn`` caps as ``cap`` says."""
    dest = folder / "model"
    if model.is_dir():
        shutil.copytree(model, dest)
    else:
        with tarfile.open(model, "r:gz") as tar:
            tar.extractall(dest, filter="data")
    program = dest / "code" / "inference.py"
    source = program.read_text()
    if CAP_NOW not in source:
        raise SystemExit(f"{program}: no '{CAP_NOW.strip()}' line; is this model from this checkout?")
    program.write_text(source.replace(CAP_NOW, cap))
    return dest


def environment(config: str) -> dict[str, str]:
    env = serving_environment()
    if config in ("before", "model_fn"):
        for var in THREAD_VARS:
            env.pop(var)
    return env


def cpu_seconds(pgid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run(config: str, model: Path, bodies: list[bytes], args, work: Path) -> dict:
    cap = CAP_BEFORE if config in ("before", "env") else CAP_NOW
    folder = work / config
    folder.mkdir()
    variant = model_variant(model, folder, cap)
    with realstack.Container(variant, environment(config), folder / "container", isolate=False,
                             workers=args.workers, startup_timeout=300) as box:
        if not box.ready["ready"]:
            raise SystemExit(f"{config}: the stack did not start:\n{box.log_tail()}")
        url = f"http://127.0.0.1:{box.port}"
        asyncio.run(run_load(url, bodies, total=max(50, args.requests // 10), concurrency=args.concurrency,
                             id_prefix=f"warm-{config}-"))  # every worker has loaded the model
        cpu0 = cpu_seconds(box.pid)
        res = asyncio.run(run_load(url, bodies, total=args.requests, concurrency=args.concurrency,
                                   id_prefix=f"{config}-"))
        cpu = cpu_seconds(box.pid) - cpu0
    return {"config": config, "ok": res.ok, "errors": res.errors + sum(v for k, v in res.statuses.items() if k != 200),
            "throughput": res.throughput, "p50": res.percentile(50) * 1000, "p99": res.percentile(99) * 1000,
            "cpu_ms": 1000 * cpu / max(1, res.ok)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="model.tar.gz or an extracted model folder")
    p.add_argument("--pairs", type=Path, required=True, help="MSRP-layout file or split CSV (label,s1,s2)")
    p.add_argument("--requests", type=int, default=1500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the image's, one per CPU)")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    args = p.parse_args(argv)
    reason = realstack.unavailable_reason()
    if reason:
        raise SystemExit(reason)
    bodies = [csv_body(pair) for pair in read_pairs(args.pairs)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="real-serving-") as tmp:
        for config in args.configs:
            t0 = time.monotonic()
            rows.append(run(config, args.model, bodies, args, Path(tmp)))
            print(f"{config}: done in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    load = os.getloadavg()
    print(f"Real serving stack (gunicorn + gevent, {args.workers or os.cpu_count()} workers), "
          f"{args.requests} requests, {args.concurrency} keep-alive clients, one pair per request; "
          f"{os.cpu_count()} cores, load average after {load[0]:.1f}.\n")
    print("| configuration | req/s | p50 (ms) | p99 (ms) | server CPU (ms/req) | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['config']} | {r['throughput']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['cpu_ms']:.2f} "
              f"| {r['errors']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
