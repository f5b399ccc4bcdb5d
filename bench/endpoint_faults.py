"""SIGKILL rounds: what a hard crash of the endpoint loses from data capture.

Each round starts ``python -m stsmon.endpoint serve`` (capture on, 100 %
sampling, the default 1 s flush interval), drives it with 8 keep-alive
clients, and kills the whole server (master and workers) with SIGKILL at a
random moment 1.5-3 s in. Then it reads every capture file and compares with
what the clients saw acknowledged:

- lost: acknowledged requests without a record, and how long before the kill
  the oldest of them was acknowledged (must be within the flush interval);
- corrupt: lines that are not valid records (must be 0), incomplete last
  lines (allowed: at most one per open file), records for requests never sent
  or duplicated (must be 0).

    python bench/endpoint_faults.py --model MODEL_DIR [--rounds 10] [--pairs test.csv]

Prints a markdown table. The machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from endpoint_load import read_bodies, start_stsmon  # noqa: E402
from loadgen import run_load  # noqa: E402

from stsmon.endpoint.capture import scan_capture  # noqa: E402


async def one_round(url: str, bodies: list[bytes], pgid: int, kill_after: float, prefix: str):
    stop = asyncio.Event()
    task = asyncio.create_task(run_load(url, bodies, total=10**7, concurrency=8, id_prefix=prefix, stop=stop,
                                        timeout=10))
    await asyncio.sleep(kill_after)
    killed_at = time.time()
    os.killpg(pgid, signal.SIGKILL)
    stop.set()
    res = await task
    return res, killed_at


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--pairs", type=Path, default=None)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    bodies = read_bodies(args.pairs or args.model.parent / "test" / "test.csv")
    rng = random.Random(args.seed)
    rows = []
    for n in range(1, args.rounds + 1):
        tmp = Path(tempfile.mkdtemp(prefix="stsmon-kill-"))
        try:
            server = start_stsmon(args.model, args.workers, tmp / "capture")
            kill_after = rng.uniform(1.5, 3.0)
            res, killed_at = asyncio.run(one_round(server.url, bodies, server.proc.pid, kill_after, f"r{n}-"))
            server.proc.wait()
            scan = scan_capture(tmp / "capture")
            ids = [r["eventMetadata"].get("inferenceId") for r in scan.records]
            acked = dict(zip(res.acked_ids, res.acked_at))
            captured = set(ids)
            lost = [acked[i] for i in acked if i not in captured]
            sent = {f"r{n}-{k}" for k in range(res.sent)}
            rows.append({
                "round": n, "killed_after_s": round(kill_after, 2), "acknowledged": len(acked),
                "captured": len(captured), "lost": len(lost),
                "oldest_lost_before_kill_s": round(killed_at - min(lost), 3) if lost else 0.0,
                "bad_lines": scan.bad_lines, "incomplete_last_lines": scan.incomplete_last_lines,
                "files": len(scan.files), "duplicates": len(ids) - len(captured),
                "unknown_ids": len(captured - sent),
            })
            print(rows[-1], file=sys.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nSIGKILL rounds: model {args.model}, {args.workers} workers, 8 clients, flush interval 1 s "
          f"({os.cpu_count()} cores, shared machine).\n")
    print("| round | killed after (s) | acknowledged | captured | lost | oldest lost ack before kill (s) | "
          "corrupt lines | incomplete last lines / files | duplicates | unknown ids |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['round']} | {r['killed_after_s']} | {r['acknowledged']} | {r['captured']} | {r['lost']} | "
              f"{r['oldest_lost_before_kill_s']} | {r['bad_lines']} | {r['incomplete_last_lines']} / {r['files']} | "
              f"{r['duplicates']} | {r['unknown_ids']} |")
    worst = max(r["oldest_lost_before_kill_s"] for r in rows)
    total_lost = sum(r["lost"] for r in rows)
    total_acked = sum(r["acknowledged"] for r in rows)
    print(f"\nLost {total_lost} of {total_acked} acknowledged records over {len(rows)} rounds; the oldest lost one "
          f"was acknowledged {worst} s before its kill (flush interval 1 s). Corrupt lines: "
          f"{sum(r['bad_lines'] for r in rows)}; duplicates: {sum(r['duplicates'] for r in rows)}; "
          f"unknown ids: {sum(r['unknown_ids'] for r in rows)}.")
    ok = all(r["bad_lines"] == 0 and r["duplicates"] == 0 and r["unknown_ids"] == 0
             and r["incomplete_last_lines"] <= r["files"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
