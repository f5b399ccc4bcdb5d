"""Scale benchmark of the model-quality monitor: one window of 1 million captures + labels.

    .venv/bin/python bench/monitor_scale.py                     # 1,000,000 records
    .venv/bin/python bench/monitor_scale.py --records 200000    # quicker
    .venv/bin/python bench/monitor_scale.py --setup-evidently   # first time: make .venv-evidently

What it does, in one run on the same data:

1. writes one hour of synthetic data-capture files (SageMaker's JSONL, a real
   sentence pair as the request, ``label,probability`` as the response) and
   one ground-truth file (stsmon.monitoring.synthetic);
2. runs ``processing_scripts/monitor.py`` on them as the pipeline would (a
   separate process): parse + merge + metrics + constraints + all outputs;
3. runs Evidently's ``ClassificationPreset`` report (in its own venv,
   ``.venv-evidently``, from bench/requirements-evidently.txt: Evidently's
   dependencies are not in our pins) on the same labels, predictions and
   probabilities, given as an in-memory DataFrame: Evidently has no reader
   for capture files, so its row measures the metric computation alone (the
   load of the arrays is reported apart);
4. prints a markdown table: wall time and peak memory (max RSS of the
   process, from ``wait4``) of each, and the metrics each computed.

Targets for the monitor: under 30 s and under 2 GB for 1 million records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stsmon.monitoring.synthetic import write_constraints, write_window  # noqa: E402

HOUR = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
EVIDENTLY_VENV = REPO / ".venv-evidently"
EVIDENTLY_REQUIREMENTS = REPO / "bench" / "requirements-evidently.txt"

EVIDENTLY_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.presets import ClassificationPreset
t1 = time.perf_counter()
arrays = np.load(sys.argv[1])
frame = pd.DataFrame({"target": arrays["y_true"], "prediction": arrays["y_pred"], "probability": arrays["score"]})
t2 = time.perf_counter()
definition = DataDefinition(classification=[BinaryClassification(
    target="target", prediction_labels="prediction", prediction_probas="probability", pos_label=1)])
snapshot = Report([ClassificationPreset()]).run(Dataset.from_pandas(frame, data_definition=definition), None)
values = {}
for metric in snapshot.dict()["metrics"]:
    name = metric["metric_name"].split("(")[0]
    if name in ("Accuracy", "Precision", "Recall", "F1Score", "RocAuc") and name not in values:
        values[name] = float(metric["value"])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "report_s": t3 - t2, "metrics": values}))
"""


def run_with_rusage(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command: (wall seconds, peak RSS MiB of exactly this process, from os.wait4, stdout)."""
    out_file = tempfile.TemporaryFile(mode="w+")
    err_file = tempfile.TemporaryFile(mode="w+")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_file.seek(0)
    err_file.seek(0)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{err_file.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, out_file.read()


def setup_evidently() -> None:
    if not (EVIDENTLY_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run([str(EVIDENTLY_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r",
                    str(EVIDENTLY_REQUIREMENTS)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=12, help="capture files in the hour (SageMaker writes many)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    parser.add_argument("--evidently-python", type=Path, default=EVIDENTLY_VENV / "bin" / "python")
    parser.add_argument("--setup-evidently", action="store_true", help="create/update .venv-evidently first")
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args(argv)

    if args.setup_evidently:
        setup_evidently()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    try:
        capture, gt, baseline, out = work / "capture", work / "ground_truth", work / "baseline", work / "out"
        for folder in (capture, gt, out):
            shutil.rmtree(folder, ignore_errors=True)
        t = time.perf_counter()
        window = write_window(capture, gt, HOUR, args.records, accuracy=0.85, seed=42, files=args.files)
        write_constraints(baseline, accuracy=0.8, f1=0.8, auc=0.8)
        gen_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in window.capture_files + window.label_files) / 1e6

        wall, rss, stdout = run_with_rusage([
            sys.executable, str(REPO / "processing_scripts" / "monitor.py"),
            "--capture-dir", str(capture), "--ground-truth-dir", str(gt), "--baseline-dir", str(baseline),
            "--output-dir", str(out), "--execution-time", "2026-11-27T13:05:00Z",
            "--endpoint-name", "sts-endpoint", "--schedule-name", "bench"])
        result = json.loads((out / "monitoring_result.json").read_text())
        ours = result["metrics"]
        if result["counts"]["matched"] != args.records:
            raise SystemExit(f"monitor matched {result['counts']['matched']} of {args.records}: {stdout}")

        rows = [("monitor.py (parse 2 JSONL sets, merge, metrics, outputs)", wall, rss,
                 [ours["accuracy"], ours["precision"], ours["recall"], ours["f1"], ours["auc"]])]
        notes = []
        if not args.skip_evidently:
            if not args.evidently_python.exists():
                notes.append(f"Evidently skipped: {args.evidently_python} missing (run with --setup-evidently)")
            else:
                arrays = work / "arrays.npz"
                np.savez(arrays, y_true=window.y_true, y_pred=window.y_pred, score=window.score)
                ev_wall, ev_rss, ev_out = run_with_rusage([str(args.evidently_python), "-c", EVIDENTLY_SCRIPT, str(arrays)])
                ev = json.loads(ev_out.strip().splitlines()[-1])
                version = subprocess.run([str(args.evidently_python), "-c", "import evidently; print(evidently.__version__)"],
                                         capture_output=True, text=True).stdout.strip()
                m = ev["metrics"]
                rows.append((f"Evidently {version} ClassificationPreset (in-memory DataFrame; process total)", ev_wall, ev_rss,
                             [m.get("Accuracy"), m.get("Precision"), m.get("Recall"), m.get("F1Score"), m.get("RocAuc")]))
                notes.append(f"Evidently inside its process: import {ev['import_s']:.1f} s, array load "
                             f"{ev['load_s']:.1f} s, report {ev['report_s']:.1f} s")

        print(f"## Monitor scale benchmark: {args.records:,} capture records + labels in one window\n")
        print(f"Data: {len(window.capture_files)} capture files + 1 ground-truth file, {size_mb:,.0f} MB "
              f"(generated in {gen_s:.1f} s). Machine: {platform.machine()}, {os.cpu_count()} cores "
              f"(shared with other work while measured), Python {platform.python_version()}.\n")
        print("| run | wall time (s) | peak RSS (MiB) | accuracy | precision | recall | f1 | auc |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, w, r, vals in rows:
            cells = " | ".join("n/a" if v is None else f"{v:.6f}" for v in vals)
            print(f"| {name} | {w:.1f} | {r:,.0f} | {cells} |")
        print()
        status = "PASS" if rows[0][1] < 30 and rows[0][2] < 2048 else "MISS"
        print(f"Targets for monitor.py (< 30 s, < 2048 MiB): {status}. Monitor status: {result['status']}, "
              f"counts: {json.dumps(result['counts'])}")
        for note in notes:
            print(f"\n{note}")
        return 0 if status == "PASS" else 1
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
