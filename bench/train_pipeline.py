#!/usr/bin/env python3
"""Benchmark: the local training pipeline on the full MSRP corpus, wall time.

Synthesizes the CDK app (or uses --assembly), deploys the foundation and
training stacks into a fresh temporary state folder, then runs
``stsmon train --input-data <corpus>/stsmsrpc.txt`` ``--runs`` times and
prints a markdown table: total wall time of the command and each step's
duration. Target: under 2 minutes on a 2-core machine.

    .venv/bin/python bench/train_pipeline.py [--runs 3] [--assembly cdk.out] [--msrp DIR]

The machine may be shared: the table prints the load average before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sh(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--assembly", type=Path, default=None, help="Use this cdk.out instead of synthesizing.")
    parser.add_argument("--msrp", type=Path, default=Path(os.environ.get("STSMON_MSRP_DIR") or REPO.parent / "shared" / "data" / "msrp"))
    args = parser.parse_args(argv)
    corpus = args.msrp / "stsmsrpc.txt"
    if not corpus.is_file():
        sys.exit(f"MSRP corpus not found: {corpus} (set STSMON_MSRP_DIR or --msrp)")
    stsmon = [sys.executable, "-m", "stsmon.cli"]
    with tempfile.TemporaryDirectory(prefix="stsmon-bench-") as tmp:
        work = Path(tmp)
        assembly = args.assembly
        if assembly is None:
            assembly = work / "cdk.out"
            t0 = time.monotonic()
            sh([*stsmon, "synth", "-o", str(assembly)], REPO)
            synth_s = time.monotonic() - t0
        else:
            synth_s = None
        state = work / "state"
        t0 = time.monotonic()
        sh([*stsmon, "deploy", "sts-training", "--assembly", str(assembly.resolve()), "--state-dir", str(state)], REPO)
        deploy_s = time.monotonic() - t0
        rows = []
        for i in range(args.runs):
            load = os.getloadavg()[0]
            t0 = time.monotonic()
            sh([*stsmon, "train", "--state-dir", str(state), "--input-data", str(corpus), "--out", str(work / f"run{i}.json")], REPO)
            wall = time.monotonic() - t0
            record = json.loads((work / f"run{i}.json").read_text())
            rows.append((wall, load, {s["name"]: s["duration_seconds"] for s in record["steps"]}, record["metrics"].get("accuracy")))
    steps = list(rows[0][2])
    print(f"Local training pipeline, full MSRP corpus ({corpus.name}), {os.cpu_count()} CPUs, shared machine")
    print()
    if synth_s is not None:
        print(f"- `stsmon synth`: {synth_s:.1f} s")
    print(f"- `stsmon deploy sts-training` (fresh state): {deploy_s:.1f} s")
    print()
    print("| run | load avg (1 min) | `stsmon train` wall (s) | " + " | ".join(f"{s} (s)" for s in steps) + " | accuracy |")
    print("|---|---|---|" + "---|" * len(steps) + "---|")
    for i, (wall, load, durations, acc) in enumerate(rows, 1):
        print(f"| {i} | {load:.1f} | {wall:.1f} | " + " | ".join(f"{durations.get(s) or 0:.1f}" for s in steps) + f" | {acc:.4f} |")
    if len(rows) > 1:
        print(f"| median | | {statistics.median(r[0] for r in rows):.1f} | " + " | ".join(
            f"{statistics.median(r[2].get(s) or 0 for r in rows):.1f}" for s in steps) + " | |")


if __name__ == "__main__":
    main()
