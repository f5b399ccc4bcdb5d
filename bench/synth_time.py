#!/usr/bin/env python3
"""Wall time of `cdk synth` for this app against an empty CDK app, in the same run.

Both go through the pinned CDK CLI (node_modules/.bin/cdk) with the same
flags, no AWS credentials, and (where ``unshare -rn`` works) no network. The
runs alternate (empty, app, empty, app, ...) so a busy machine slows both
alike. Each app synthesizes into its own output folder, reused from run to
run as a real ``cdk.out`` is: the first run ("cold") starts from an empty
folder, the others ("warm") find what earlier runs left (CDK's staged
assets; this app's content-addressed pipeline definitions).

    .venv/bin/python bench/synth_time.py [--repeat 5] [--cold 3]

Prints a markdown table. Target (issue 14): app <= 1.5 x the empty app (cold and warm medians are both reported).
The empty app is measured twice: with CDK's defaults (built-in CloudFormation
validation on) and with that validation off, as this app runs it (it runs
cfn-lint, checkov and cdk-nag instead; see docs/aws.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
PYTHON = ROOT / ".venv" / "bin" / "python"

EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App(builtin_cloud_formation_validation={validation})
cdk.Stack(app, "Empty", env=cdk.Environment(account="000000000000", region="us-east-1"))
app.synth()
"""


def env() -> dict[str, str]:
    result = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    result.update(
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_CLI_TELEMETRY="true",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
    )
    return result


def no_network() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def synth(app_command: str | None, cwd: Path, outdir: Path, cpu: list[float] | None = None) -> float:
    """Wall time of one ``cdk synth`` into ``outdir`` (kept for the next run); its CPU time
    (user + system of the CLI and every process it waited for) is appended to ``cpu``."""
    command = [*no_network(), str(CDK), "synth", "--all", "--quiet", "--no-notices", "--output", str(outdir)]
    if app_command:
        command += ["--app", app_command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        sys.exit(f"cdk synth failed in {cwd}:\n{result.stderr[-3000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="warm runs per app (default 5)")
    parser.add_argument("--cold", type=int, default=3, help="cold runs per app, each into an empty folder (default 3)")
    args = parser.parse_args(argv)
    if not CDK.is_file():
        sys.exit(f"{CDK} missing: run ./run.sh setup")
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        work = Path(tmp)
        apps = {}
        for name, validation in (("empty CDK app (defaults)", "True"), ("empty CDK app (validation off)", "False")):
            folder = work / name.split()[0] / validation
            folder.mkdir(parents=True)
            (folder / "app.py").write_text(EMPTY_APP.format(validation=validation))
            apps[name] = (f"{PYTHON} app.py", folder)
        apps["stsmodelmonitor (4 stacks, nag on)"] = (None, ROOT)
        times: dict[str, list[float]] = {name: [] for name in apps}
        cold: dict[str, list[float]] = {name: [] for name in apps}
        cold_cpu: dict[str, list[float]] = {name: [] for name in apps}
        # Alternate the apps in every round, so load changes hit all of them alike.
        for round_ in range(args.cold):
            for index, (name, (command, cwd)) in enumerate(apps.items()):
                cold[name].append(synth(command, cwd, work / f"cold-{round_}-{index}", cold_cpu[name]))
        for _ in range(args.repeat + 1):
            for index, (name, (command, cwd)) in enumerate(apps.items()):
                times[name].append(synth(command, cwd, work / f"out-{index}"))
    empty = statistics.median(times["empty CDK app (defaults)"][1:])
    empty_cold = statistics.median(cold["empty CDK app (defaults)"])
    print(f"`cdk synth` wall time: {args.cold} cold runs (each into an empty output folder) and {args.repeat} warm "
          f"runs (folder reused) per app, alternating; {platform.node()} ({os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}).\n")
    print("| app | cold median (s) | cold / empty app cold | cold CPU median (s) | warm median (s) | warm min (s) | warm / empty app warm |")
    print("|---|---|---|---|---|---|---|")
    for name, values in times.items():
        warm = values[1:]
        c = statistics.median(cold[name])
        print(f"| {name} | {c:.1f} | {c / empty_cold:.2f}x | {statistics.median(cold_cpu[name]):.1f} | "
              f"{statistics.median(warm):.1f} | {min(warm):.1f} | "
              f"{statistics.median(warm) / empty:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
