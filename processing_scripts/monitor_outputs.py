"""The monitor's outputs: the files (all or nothing) and the CloudWatch metrics.

``statistics.json``, ``constraint_violations.json`` (Model Monitor's
formats; the data-quality check's, when it ran, in ``data-quality/``), ``report.html`` (monitor_report), ``cloudwatch_metrics.json``
(``PutMetricData`` input) and ``monitoring_result.json``, written to a
staging folder and renamed into place, the result file last; then, when
asked, ``PutMetricData`` in batches of 20.

Standard library; boto3 only to publish.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from stscontracts import names

try:  # imported as processing_scripts.<module> (tests, local runtime)
    from . import monitor_report, monitor_window
except ImportError:  # run next to its sibling modules (SageMaker)
    import monitor_report  # type: ignore[no-redef]
    import monitor_window  # type: ignore[no-redef]

STATUS_COMPLETED = names.MONITOR_COMPLETED
STATUS_VIOLATIONS = names.MONITOR_VIOLATIONS
STATUS_FAILED = names.MONITOR_FAILED

RESULT_FILE = names.RESULT_FILE
REPORT_FILE = names.REPORT_FILE
CLOUDWATCH_FILE = names.CLOUDWATCH_FILE


def cloudwatch_payload(result: dict[str, Any], namespace: str) -> dict[str, Any]:
    """PutMetricData input: Model Monitor's metric names, dimensions Endpoint and MonitoringSchedule
    (the result's ``endpoint_name`` and ``schedule_name``), in ``namespace``.

    Count metrics are always there (so a no-data hour is visible); the
    quality metrics only when the status is not Failed. Timestamp: the window end.
    """
    dims = [{"Name": names.DIMENSION_ENDPOINT, "Value": result["endpoint_name"]},
            {"Name": names.DIMENSION_SCHEDULE, "Value": result["schedule_name"]}]
    stamp = result["window"]["end"]
    data = []
    counts = result["counts"]
    for name, value, unit in (
        ("captured_records", counts["captured"], "Count"),
        ("labelled_records", counts["labelled"], "Count"),
        ("matched_records", counts["matched"], "Count"),
        ("label_coverage", result["label_coverage"], "None"),
        ("constraint_violations", len(result["violations"]), "Count"),
        (names.METRIC_MONITORING_FAILED, 1 if result["status"] == STATUS_FAILED else 0, "Count"),
    ):
        data.append({"MetricName": name, "Timestamp": stamp, "Dimensions": dims, "Value": float(value), "Unit": unit})
    if result["status"] != STATUS_FAILED:
        for name, value in result["metrics"].items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                data.append({"MetricName": name, "Timestamp": stamp, "Dimensions": dims,
                             "Value": float(value), "Unit": "None"})
    data += [{"MetricName": name, "Timestamp": stamp, "Dimensions": dims, "Value": value, "Unit": unit}
             for name, value, unit in data_quality_metrics(result.get("data_quality") or {})]
    return {"Namespace": namespace, "MetricData": data}


def data_quality_metrics(block: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(name, value, unit) of the data-quality part, whatever the model-quality status (no labels needed):

    - when the check ran (Completed or CompletedWithViolations): Model Monitor's
      ``feature_baseline_drift_<feature>`` (the distance the check compared:
      Robust or Simple) of each feature that has one, ``data_quality_violations``
      and ``baseline_drift_violations`` (counts);
    - when there are estimates: ``estimated_<metric>`` and its interval
      ``estimated_<metric>_lower`` / ``_upper``.
    """
    out: list[tuple[str, float, str]] = []
    if block.get("status") in (STATUS_COMPLETED, STATUS_VIOLATIONS):
        for feature in block.get("features", []):
            distance = feature.get("distance")
            if isinstance(distance, (int, float)) and math.isfinite(distance):
                out.append((names.feature_drift_metric(feature["feature"]), float(distance), "None"))
        violations = block.get("violations", [])
        out.append((names.METRIC_DATA_QUALITY_VIOLATIONS, float(len(violations)), "Count"))
        drifted = sum(1 for v in violations if v["constraint_check_type"] == "baseline_drift_check")
        out.append((names.METRIC_DRIFT_VIOLATIONS, float(drifted), "Count"))
    for metric, estimate in ((block.get("estimated") or {}).get("metrics") or {}).items():
        name = names.estimated_metric(metric)
        for suffix, key in (("", "value"), ("_lower", "lower"), ("_upper", "upper")):
            value = estimate.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                out.append((name + suffix, float(value), "None"))
    return out


def publish_cloudwatch(payload: dict[str, Any], cloudwatch: Any = None, *, region: str = "") -> int:
    """PutMetricData in batches of 20; returns the number of data points sent.

    Without a client, one is made in ``region``.
    """
    if cloudwatch is None:
        import boto3  # only on AWS

        cloudwatch = boto3.client("cloudwatch", region_name=region)
    data = [dict(d, Timestamp=monitor_window.parse_time(d["Timestamp"], "Timestamp")) for d in payload["MetricData"]]
    for i in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace=payload["Namespace"], MetricData=data[i : i + 20])
    return len(data)


def write_outputs(result: dict[str, Any], output_dir: Path, namespace: str) -> dict[str, Any]:
    """Write every output file into ``output_dir``, all or nothing; returns monitoring_result.json's content.

    ``result`` is :func:`monitor.run_monitor`'s, with ``_statistics`` (statistics.json's content) and
    ``_baseline_statistics`` (for the report), which are taken out of it.
    """
    statistics = result.pop("_statistics")
    baseline_statistics = result.pop("_baseline_statistics")
    data_quality_statistics = result.pop("_data_quality_statistics", None)
    payload = cloudwatch_payload(result, namespace)
    html = monitor_report.render_html(result, statistics, baseline_statistics)
    files = {
        names.STATISTICS_FILE: json.dumps(statistics, indent=2),
        names.VIOLATIONS_FILE: json.dumps({"violations": result["violations"]}, indent=2),
        CLOUDWATCH_FILE: json.dumps(payload, indent=2),
        REPORT_FILE: html,
        RESULT_FILE: json.dumps(result, indent=2),
    }
    if data_quality_statistics is not None:  # Model Monitor's data-quality files, in their own folder
        violations = {"violations": result["data_quality"]["violations"]}
        files = {f"{names.DATA_QUALITY_DIR}/{names.STATISTICS_FILE}": json.dumps(data_quality_statistics, indent=2),
                 f"{names.DATA_QUALITY_DIR}/{names.VIOLATIONS_FILE}": json.dumps(violations, indent=2), **files}
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".monitor-", dir=output_dir))
    try:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
        for name in files:  # the result file last: its presence means the set is complete
            (output_dir / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result
