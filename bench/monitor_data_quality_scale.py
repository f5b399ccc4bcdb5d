"""What the data-quality half adds to the monitoring job on a large window.

    .venv/bin/python bench/monitor_data_quality_scale.py                   # 1,000,000 records
    .venv/bin/python bench/monitor_data_quality_scale.py --records 200000

Writes one hour of synthetic captures + labels (stsmon.monitoring.synthetic:
SageMaker's JSONL, a real sentence pair as each request, ``label,probability``
as the answer), a data-quality baseline of the fixture pairs
(tests/processing_scripts' hand-written pairs, with data_quality's own
functions), then runs ``processing_scripts/monitor.py`` twice as the pipeline
runs it (a separate process each): without a data-quality baseline (the
model-quality check alone) and with one (both checks in one job). Prints wall
time and peak memory (max RSS from ``wait4``) of each and what the
data-quality half concluded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "processing_scripts"))
sys.path.insert(0, str(REPO / "tests" / "processing_scripts"))

from stsmon.monitoring.synthetic import write_constraints, write_window  # noqa: E402

HOUR = datetime(2033, 3, 14, 9, tzinfo=timezone.utc)


def _baseline(folder: Path) -> None:
    import data_quality
    import pair_features
    import performance_estimation
    from pairs_fixture import BASES

    rows = ([(a, p, 1) for a, p, _ in BASES] + [(a, c, 0) for a, _, c in BASES]) * 20
    pairs = [(a, b) for a, b, _ in rows]
    labels = np.array([y for *_, y in rows], float)
    rng = np.random.default_rng(0)
    probability = np.round(np.where(labels == 1, rng.uniform(0.6, 1.0, len(rows)), rng.uniform(0.0, 0.4, len(rows))), 4)
    vocabulary = sorted({w for a, b in pairs for w in pair_features.tokens(a) + pair_features.tokens(b)})
    columns = data_quality.feature_columns(pairs, "BinaryClassification", vocabulary=set(vocabulary),
                                           probability=probability, label=(probability >= 0.5).astype(float))
    statistics = data_quality.dataset_statistics(columns, len(pairs))
    folder.mkdir(parents=True)
    (folder / "statistics.json").write_text(json.dumps(statistics))
    (folder / "constraints.json").write_text(json.dumps(data_quality.suggest_constraints(statistics, comparison_threshold=0.1)))
    (folder / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n")
    (folder / "calibration.json").write_text(json.dumps(performance_estimation.calibration(probability, labels)))


def _run(args: list[str]) -> tuple[float, float, float, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(REPO / "processing_scripts" / "monitor.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"monitor.py failed: {proc.stderr.read()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_window(root / "capture", root / "gt", HOUR, args.records)
        write_constraints(root / "baseline", accuracy=0.7, f1=0.7)
        _baseline(root / "dq")
        size = sum(p.stat().st_size for p in (root / "capture").rglob("*.jsonl"))
        common = ["--capture-dir", str(root / "capture"), "--ground-truth-dir", str(root / "gt"),
                  "--baseline-dir", str(root / "baseline"), "--execution-time", "2033-03-14T10:05:00Z",
                  "--exit-message-file", str(root / "message")]
        rows = []
        for label, extra in (("model quality only", ["--data-quality-baseline-dir", str(root / "none")]),
                             ("model + data quality", ["--data-quality-baseline-dir", str(root / "dq")])):
            out = root / label.replace(" ", "-")
            wall, cpu_s, rss, stdout = _run(common + ["--output-dir", str(out), *extra])
            result = json.loads((out / "monitoring_result.json").read_text())
            dq = result["data_quality"]
            rows.append((label, wall, cpu_s, rss, dq))
        cpu = _data_quality_cpu(root, args.records)
        print(f"{args.records:,} records, {size / 1e6:.0f} MB of capture; load average {os.getloadavg()[0]:.1f} "
              f"(2 cores, shared)\n")
        print("| run | wall (s) | CPU user+sys (s) | peak RSS (MiB) | data quality |")
        print("|---|---|---|---|---|")
        for label, wall, cpu_s, rss, dq in rows:
            what = dq["status"]
            if "records" in dq:
                estimated = dq.get("estimated", {}).get("metrics", {}).get("accuracy", {})
                what += (f", {dq['records']} records sampled, {len(dq['violations'])} violations; estimated accuracy "
                         f"{estimated.get('value', float('nan')):.4f} over {dq['estimated']['records']:,} predictions")
            print(f"| {label} | {wall:.1f} | {cpu_s:.1f} | {rss:.0f} | {what} |")
        print(f"\nThe data-quality half alone, in process (monitor_data_quality.run_data_quality: sample, pair "
              f"features, check, CBPE over every prediction): {cpu[0]:.2f} s CPU, {cpu[1]:.2f} s wall (best of 2)")


def _data_quality_cpu(root: Path, records: int) -> tuple[float, float]:
    import monitor_baseline
    import monitor_data_quality

    files = sorted((root / "capture").rglob("*.jsonl"))
    baseline, reason = monitor_data_quality.load_data_quality_baseline(root / "dq")
    rng = np.random.default_rng(0)
    prediction = (rng.random(records) < 0.6).astype(float)
    score = np.where(prediction == 1, 0.75, 0.25)
    constraints = {"accuracy": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}}
    best = (float("inf"), float("inf"))
    for _ in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        monitor_data_quality.run_data_quality(
            files, baseline, reason, problem_type="BinaryClassification", prediction=prediction, score=score,
            model_constraints=constraints, comparisons=monitor_baseline.COMPARISONS, execution_time="2033-03-14T10:05:00Z")
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


if __name__ == "__main__":
    main()
