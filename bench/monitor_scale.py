"""Scale benchmark of the model-quality monitor: one window of 1 million captures + labels.

    .venv/bin/python bench/monitor_scale.py                          # 1,000,000 records, 3 rounds
    .venv/bin/python bench/monitor_scale.py --records 200000 --rounds 1
    .venv/bin/python bench/monitor_scale.py --workdir /tmp/w1m       # keep (and reuse) the data
    .venv/bin/python bench/monitor_scale.py --setup-evidently        # first time for the Evidently row

What it does, in one run on the same data:

1. writes one hour of synthetic data-capture files (SageMaker's JSONL, a real
   sentence pair as the request, ``label,probability`` with 6 decimals as the
   response, as inference.py writes it) and one ground-truth file
   (stsmon.monitoring.synthetic), from local files: this measures parse,
   join, metrics and outputs, not S3 (docs/monitoring.md says what a run on
   AWS reads first); and a data-quality baseline of the same traffic
   (statistics, constraints, vocabulary, calibration: ``data_quality``'s and
   ``performance_estimation``'s own functions on the window's first
   records), so the window is in distribution;
2. runs, alternately, ``--rounds`` times each (so a busy machine slows both
   alike), each in a process of its own:
   - ``processing_scripts/monitor.py`` as the pipeline runs it, both checks
     in one job (issue 12): parse + join + metrics + constraints + all five
     outputs, and the data-quality half (pair features of a sample, drift
     against the baseline, CBPE estimates over every prediction, its files);
   - the same with the model-quality check alone (no data-quality baseline),
     unless ``--skip-model-quality-only``;
   - the plain reference: pandas ``read_json(lines=True)`` of each file, the
     fields taken out of the records, ``drop_duplicates`` + ``merge``,
     scikit-learn's accuracy, precision, recall, f1 and ROC AUC - no outputs
     written, so it does less than the monitor;
3. with ``.venv-evidently`` present, Evidently's ``ClassificationPreset`` on
   the same labels, predictions and probabilities as an in-memory DataFrame
   (it has no reader for capture files: metric computation only);
4. prints a markdown table: wall time (min, median), CPU time (user + system:
   what a busy machine inflates least) and peak memory (the
   largest sum of the resident sets of the process and its children,
   sampled; at least ``wait4``'s maximum) of each, the metrics each computed (they must agree), and the
   ratio reference / monitor.

Targets (issue 14): the monitor at most 6 s and 1 GiB for 1 million records on
the project's 2-core machine, and not slower than the reference; issue 12:
both checks in one job within that budget. The verdict is on the run with
both checks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stsmon.monitoring.synthetic import PAIRS, SyntheticWindow, write_constraints, write_window  # noqa: E402

HOUR = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
EVIDENTLY_VENV = REPO / ".venv-evidently"
EVIDENTLY_REQUIREMENTS = REPO / "bench" / "requirements-evidently.txt"
TARGET_SECONDS = 6.0
TARGET_MIB = 1024.0

#: The plain reference: what one would write with pandas and scikit-learn. argv: capture files,
#: "--", label files. Prints its metrics as JSON.
REFERENCE_SCRIPT = r"""
import json, sys
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

cut = sys.argv.index("--")
captures, labels = [], []
for path in sys.argv[1:cut]:
    frame = pd.read_json(path, lines=True, dtype=False)
    meta = pd.DataFrame(frame["eventMetadata"].tolist())
    output = frame["captureData"].map(lambda c: c["endpointOutput"]["data"])
    key = meta["inferenceId"].where(meta["inferenceId"].fillna("") != "", meta["eventId"]) if "inferenceId" in meta else meta["eventId"]
    values = output.str.strip().str.split(",", expand=True).astype(float)
    captures.append(pd.DataFrame({"key": key, "prediction": values[0], "probability": values[1]}))
for path in sys.argv[cut + 1:]:
    frame = pd.read_json(path, lines=True, dtype=False)
    labels.append(pd.DataFrame({"key": frame["eventMetadata"].map(lambda m: m["eventId"]),
                                "label": frame["groundTruthData"].map(lambda g: float(g["data"]))}))
capture = pd.concat(captures, ignore_index=True).drop_duplicates("key", keep="first")
label = pd.concat(labels, ignore_index=True).drop_duplicates("key", keep="last")
merged = capture.merge(label, on="key", how="inner")
y, pred, prob = merged["label"].astype(int), merged["prediction"].astype(int), merged["probability"]
print(json.dumps({"matched": len(merged), "accuracy": accuracy_score(y, pred), "precision": precision_score(y, pred),
                  "recall": recall_score(y, pred), "f1": f1_score(y, pred), "auc": roc_auc_score(y, prob)}))
"""

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
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "report_s": t3 - t2,
                  "accuracy": values.get("Accuracy"), "precision": values.get("Precision"), "recall": values.get("Recall"),
                  "f1": values.get("F1Score"), "auc": values.get("RocAuc")}))
"""

METRICS = ("accuracy", "precision", "recall", "f1", "auc")
#: What a reused --workdir must have been made with (bumped when the data changes).
DATA_VERSION = 2
#: Records of the window the data-quality baseline is made from.
BASELINE_RECORDS = 5000


def write_data_quality_baseline(folder: Path, window: SyntheticWindow) -> None:
    """The served package's data-quality baseline for this traffic, as data_quality_baseline.py
    writes it (statistics, constraints with its default comparison, vocabulary, calibration),
    from the window's first records: their pairs (``write_window`` cycles ``PAIRS``), predictions
    and probabilities."""
    sys.path.insert(0, str(REPO / "processing_scripts"))
    import data_quality
    import data_quality_baseline
    import pair_features
    import performance_estimation

    n = min(BASELINE_RECORDS, len(window.score))
    pairs = [PAIRS[i % len(PAIRS)] for i in range(n)]
    vocabulary = sorted({w for a, b in PAIRS for w in pair_features.tokens(a) + pair_features.tokens(b)})
    columns = data_quality.feature_columns(pairs, "BinaryClassification", vocabulary=set(vocabulary),
                                           probability=window.score[:n], label=window.y_pred[:n])
    statistics = data_quality.dataset_statistics(columns, n)
    constraints = data_quality.suggest_constraints(statistics, comparison_threshold=data_quality_baseline.DEFAULT_THRESHOLD,
                                                   comparison_method=data_quality_baseline.DEFAULT_METHOD)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "statistics.json").write_text(json.dumps(statistics))
    (folder / "constraints.json").write_text(json.dumps(constraints))
    (folder / "vocabulary.txt").write_text("".join(f"{w}\n" for w in vocabulary))
    (folder / "calibration.json").write_text(json.dumps(performance_estimation.calibration(window.score[:n], window.y_true[:n])))


def run_with_rusage(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run a command: (wall seconds, CPU seconds (user + system, from ``wait4``), peak memory MiB, stdout).

    Peak memory: the largest sum of the resident sets of the process and its
    children, sampled every 10 ms with psutil, and at least the process's own
    maximum from ``wait4`` (which a sample can miss).
    """
    import psutil

    out_file = tempfile.TemporaryFile(mode="w+")
    err_file = tempfile.TemporaryFile(mode="w+")
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, text=True, env=env)  # stscontracts from this checkout
    sampled = 0
    tree = psutil.Process(proc.pid)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            total = tree.memory_info().rss + sum(c.memory_info().rss for c in tree.children(recursive=True))
        except psutil.Error:  # a process ended between the listing and the reading
            total = 0
        sampled = max(sampled, total)
        time.sleep(0.01)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_file.seek(0)
    err_file.seek(0)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{err_file.read()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, max(sampled / 2**20, usage.ru_maxrss / 1024.0), out_file.read()


def setup_evidently() -> None:
    if not (EVIDENTLY_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run([str(EVIDENTLY_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r",
                    str(EVIDENTLY_REQUIREMENTS)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=12, help="capture files in the hour (SageMaker writes many)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating (default 3)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the data there (reused when it holds a window of --records); default: a temporary folder")
    parser.add_argument("--evidently-python", type=Path, default=EVIDENTLY_VENV / "bin" / "python")
    parser.add_argument("--setup-evidently", action="store_true", help="create/update .venv-evidently first")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-model-quality-only", action="store_true",
                        help="do not also time monitor.py without the data-quality check")
    args = parser.parse_args(argv)

    if args.setup_evidently:
        setup_evidently()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    try:
        capture, gt, baseline, out = work / "capture", work / "ground_truth", work / "baseline", work / "out"
        dq_baseline = work / "data_quality_baseline"
        stamp = work / "window.json"
        made = {"records": args.records, "files": args.files, "version": DATA_VERSION}
        t = time.perf_counter()
        if stamp.is_file() and json.loads(stamp.read_text()) == made:
            window = None
            gen = "reused"
        else:
            for folder in (capture, gt, out, dq_baseline):
                shutil.rmtree(folder, ignore_errors=True)
            window = write_window(capture, gt, HOUR, args.records, accuracy=0.85, seed=42, files=args.files)
            write_constraints(baseline, accuracy=0.8, f1=0.8, auc=0.8)
            write_data_quality_baseline(dq_baseline, window)
            stamp.write_text(json.dumps(made))
            gen = f"generated in {time.perf_counter() - t:.1f} s"
        capture_files = sorted(capture.rglob("*.jsonl"))
        label_files = sorted(gt.rglob("*.jsonl"))
        size_mb = sum(p.stat().st_size for p in capture_files + label_files) / 1e6

        monitor_cmd = [sys.executable, str(REPO / "processing_scripts" / "monitor.py"),
                       "--capture-dir", str(capture), "--ground-truth-dir", str(gt), "--baseline-dir", str(baseline),
                       "--output-dir", str(out), "--execution-time", "2026-11-27T13:05:00Z",
                       "--endpoint-name", "sts-endpoint", "--schedule-name", "bench",
                       "--exit-message-file", str(work / "message")]
        both_cmd = [*monitor_cmd, "--data-quality-baseline-dir", str(dq_baseline)]
        model_only_cmd = [*monitor_cmd, "--data-quality-baseline-dir", str(work / "no-data-quality-baseline")]
        reference_cmd = [sys.executable, "-c", REFERENCE_SCRIPT, *map(str, capture_files), "--", *map(str, label_files)]
        runs: dict[str, list[tuple[float, float, float]]] = {"monitor": [], "model-only": [], "reference": []}
        values: dict[str, dict] = {}
        for _ in range(args.rounds):  # alternate, so a busy machine slows all alike
            wall, cpu, rss, stdout = run_with_rusage(both_cmd)
            runs["monitor"].append((wall, cpu, rss))
            result = json.loads((out / "monitoring_result.json").read_text())
            if result["counts"]["matched"] != args.records:
                raise SystemExit(f"monitor matched {result['counts']['matched']} of {args.records}: {stdout}")
            if result["data_quality"]["status"] not in ("Completed", "CompletedWithViolations"):
                raise SystemExit(f"the data-quality check did not run: {json.dumps(result['data_quality'])[:500]}")
            values["monitor"] = result["metrics"]
            if not args.skip_model_quality_only:
                wall, cpu, rss, stdout = run_with_rusage(model_only_cmd)
                runs["model-only"].append((wall, cpu, rss))
                alone = json.loads((out / "monitoring_result.json").read_text())
                if alone["data_quality"]["status"] != "NotEvaluated" or alone["metrics"] != result["metrics"]:
                    raise SystemExit(f"the model-quality-only run differs: {json.dumps(alone)[:500]}")
                values["model-only"] = alone["metrics"]
            if not args.skip_reference:
                wall, cpu, rss, stdout = run_with_rusage(reference_cmd)
                runs["reference"].append((wall, cpu, rss))
                values["reference"] = json.loads(stdout.strip().splitlines()[-1])
                if values["reference"]["matched"] != args.records:
                    raise SystemExit(f"the reference matched {values['reference']['matched']} of {args.records}")

        rows = [("monitor.py, both checks (model quality: parse 2 JSONL sets, join, metrics, 5 output files; "
                 "data quality: sample, drift, CBPE estimates, its 2 files)", runs["monitor"], values["monitor"])]
        if runs["model-only"]:
            rows.append(("monitor.py, model quality only (no data-quality baseline)", runs["model-only"], values["model-only"]))
        if runs["reference"]:
            rows.append(("reference: pandas read_json(lines=True) + merge + scikit-learn metrics (no outputs)",
                         runs["reference"], values["reference"]))
        notes = []
        if not args.skip_evidently:
            if not args.evidently_python.exists():
                notes.append(f"Evidently skipped: {args.evidently_python} missing (run with --setup-evidently)")
            else:
                if window is None:
                    notes.append("Evidently skipped: the data was reused (its arrays are made with the data)")
                else:
                    arrays = work / "arrays.npz"
                    np.savez(arrays, y_true=window.y_true, y_pred=window.y_pred, score=window.score)
                    ev_wall, ev_cpu, ev_rss, ev_out = run_with_rusage([str(args.evidently_python), "-c", EVIDENTLY_SCRIPT, str(arrays)])
                    ev = json.loads(ev_out.strip().splitlines()[-1])
                    version = subprocess.run([str(args.evidently_python), "-c", "import evidently; print(evidently.__version__)"],
                                             capture_output=True, text=True).stdout.strip()
                    rows.append((f"Evidently {version} ClassificationPreset (in-memory DataFrame; metrics only)",
                                 [(ev_wall, ev_cpu, ev_rss)], ev))
                    notes.append(f"Evidently inside its process: import {ev['import_s']:.1f} s, array load "
                                 f"{ev['load_s']:.1f} s, report {ev['report_s']:.1f} s")

        print(f"## Monitor scale benchmark: {args.records:,} capture records + labels in one window\n")
        print(f"Data: {len(capture_files)} capture files + {len(label_files)} ground-truth file(s), {size_mb:,.0f} MB "
              f"({gen}), local files. Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f} after the runs, Python {platform.python_version()}. "
              f"{args.rounds} round(s), alternating.\n")
        print("| run | wall min (s) | wall median (s) | CPU min (s) | peak memory (MiB) | " + " | ".join(METRICS) + " |")
        print("|---|---:|---:|---:|---:|" + "---:|" * len(METRICS))
        for name, measured, metrics in rows:
            walls = [w for w, _, _ in measured]
            cells = " | ".join("n/a" if metrics.get(m) is None else f"{metrics[m]:.6f}" for m in METRICS)
            print(f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | {min(c for _, c, _ in measured):.2f} | "
                  f"{max(r for _, _, r in measured):,.0f} | {cells} |")
        print()
        monitor_min = min(w for w, _, _ in runs["monitor"])
        monitor_median = statistics.median(w for w, _, _ in runs["monitor"])
        monitor_rss = max(r for _, _, r in runs["monitor"])
        passed = monitor_median <= TARGET_SECONDS and monitor_rss <= TARGET_MIB
        verdict = (f"Targets for monitor.py with both checks (<= {TARGET_SECONDS:g} s, <= {TARGET_MIB:,.0f} MiB): "
                   f"{'PASS' if passed else 'MISS'} (median {monitor_median:.2f} s, min {monitor_min:.2f} s, {monitor_rss:,.0f} MiB).")
        if runs["reference"]:
            ref_median = statistics.median(w for w, _, _ in runs["reference"])
            ref_min = min(w for w, _, _ in runs["reference"])
            agree = all(abs(values["monitor"][m] - values["reference"][m]) < 1e-9 for m in METRICS)
            faster = monitor_median <= ref_median
            passed = passed and faster and agree
            verdict += (f" Reference / monitor: {ref_median / monitor_median:.2f}x (medians), {ref_min / monitor_min:.2f}x (mins):"
                        f" {'not slower' if faster else 'SLOWER'}; metrics {'agree' if agree else 'DISAGREE'}.")
        print(verdict)
        print(f"\nMonitor status: {result['status']}, counts: {json.dumps(result['counts'])}")
        dq = result["data_quality"]
        estimated = dq.get("estimated", {})
        print(f"\nData quality: {dq['status']}, {dq.get('records', 0):,} records sampled for the pair features, "
              f"{len(dq.get('violations', []))} violation(s); estimated accuracy "
              f"{estimated.get('metrics', {}).get('accuracy', {}).get('value', float('nan')):.4f} over "
              f"{estimated.get('records', 0):,} predictions")
        for note in notes:
            print(f"\n{note}")
        return 0 if passed else 1
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
