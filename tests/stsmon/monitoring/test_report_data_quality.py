"""stsmon report's data-quality section, on fixture results in the monitor's documented form
(monitoring_result.json's ``data_quality`` block; Model Monitor data-quality statistics.json built by
the step scripts' own ``data_quality.dataset_statistics``)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from processing_scripts import data_quality
from stsmon.monitoring import data_quality_report as dqr
from stsmon.monitoring import report

T0 = datetime(2033, 3, 1, 0, tzinfo=timezone.utc)
FEATURES = ("word1_f1", "sentence1_tokens", "probability", "len_ratio", "char3_jaccard")


def block(distances: dict[str, float], *, threshold: float = 0.05, estimated: float = 0.8) -> dict:
    features = [{"feature": name, "inferred_type": "Fractional", "completeness": 1.0,
                 "linf_simple": d + 0.15, "linf_robust": d, "distance": d, "method": "Robust",
                 "threshold": threshold, "psi": d * 2, "status": "Violation" if d > threshold else "OK",
                 "violations": ["baseline_drift_check"] if d > threshold else []} for name, d in distances.items()]
    violations = [{"feature_name": f["feature"], "constraint_check_type": "baseline_drift_check",
                   "description": f"Baseline drift distance: {f['distance']:.4g} exceeds threshold: {threshold:g} (Robust)"}
                  for f in features if f["distance"] > threshold]
    return {"status": "CompletedWithViolations" if violations else "Completed", "reason": "", "records": 200,
            "sampled": False, "sample_limit": 5000, "comparison_method": "Robust", "comparison_threshold": threshold,
            "violations": violations, "features": features,
            "estimated": {"metrics": {"accuracy": {"value": estimated, "lower": estimated - 0.05,
                                                   "upper": estimated + 0.05, "threshold": 0.72,
                                                   "comparison_operator": "LessThanThreshold", "status": "OK"},
                                      "f1": {"value": estimated + 0.04, "lower": estimated - 0.01,
                                             "upper": estimated + 0.09, "threshold": 0.75,
                                             "comparison_operator": "LessThanThreshold", "status": "OK"}},
                          "violations": [], "records": 200, "reliable": True, "reason": ""}}


def result(hour: int, dq: dict | None, *, accuracy: float | None = None) -> dict:
    start = T0 + timedelta(hours=hour)
    doc = {"status": "Completed" if accuracy is not None else (dq or {}).get("status", "Failed"),
           "failure_reason": "", "problem_type": "BinaryClassification",
           "window": {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()},
           "counts": {"captured": 200, "labelled": 200 if accuracy is not None else 0,
                      "matched": 200 if accuracy is not None else 0},
           "metrics": {"accuracy": accuracy} if accuracy is not None else {}, "constraints": {}, "violations": []}
    if dq is not None:
        doc["data_quality"] = dq
    return doc


def runs() -> list[report.RunResult]:
    quiet = {name: 0.0 for name in FEATURES}
    return [
        report.RunResult.from_result("old", result(0, None, accuracy=0.79)),  # before the check existed
        report.RunResult.from_result("in1", result(1, block(quiet | {"probability": 0.01}), accuracy=0.78)),
        report.RunResult.from_result("in2", result(2, block(quiet, estimated=0.79))),  # no labels yet
        report.RunResult.from_result("shift", result(3, block(quiet | {"word1_f1": 0.41, "char3_jaccard": 0.22},
                                                              estimated=0.9))),
    ]


def statistics(word1_f1: np.ndarray) -> dict:
    rng = np.random.default_rng(0)
    columns = [("word1_f1", "Fractional", word1_f1), ("char3_jaccard", "Fractional", rng.uniform(0, 1, len(word1_f1)))]
    return data_quality.dataset_statistics(columns, len(word1_f1))


def test_series_ranking_and_estimates_follow_the_blocks():
    found = runs()
    assert [r.execution_id for r in dqr.judged(found)] == ["in1", "in2", "shift"]
    series, thresholds = dqr.drift_series(found)
    assert series["word1_f1"] == [0.0, 0.0, 0.41] and thresholds == [0.05, 0.05, 0.05]
    assert dqr.most_drifted(found[-1], 2) == ["word1_f1", "char3_jaccard"]
    assert dqr.ranked_over_time(series, 2) == ["word1_f1", "char3_jaccard"]
    est = dqr.estimated_series(found, "accuracy")
    assert est["estimated"] == [0.8, 0.79, 0.9] and est["realized"][0] == 0.78
    assert math.isnan(est["realized"][1]) and math.isnan(est["realized"][2])  # labels not arrived


def test_histograms_weigh_sketch_levels_and_compare_as_shares():
    base = statistics(np.random.default_rng(1).uniform(0.4, 1.0, 5000))  # > KLL_K: a compacted sketch
    window = statistics(np.random.default_rng(2).uniform(0.0, 0.2, 200))
    items, weights = dqr.sketch_weights(base["features"][0])
    assert sum(weights) == 5000 and max(weights) > 1
    edges, w, b = dqr.histogram_pair(window["features"][0], base["features"][0])
    assert len(edges) == dqr.HISTOGRAM_BINS + 1 and sum(w) == pytest.approx(1) and sum(b) == pytest.approx(1)
    low_half = dqr.HISTOGRAM_BINS // 4
    assert sum(w[:low_half]) == pytest.approx(1) and sum(b[:low_half]) == 0  # the window sits where the baseline is not
    assert dqr.histogram_pair({"name": "x", "numerical_statistics": {}}, base["features"][0]) is None


def test_report_page_has_the_data_quality_section(tmp_path):
    base = statistics(np.random.default_rng(1).uniform(0.4, 1.0, 600))
    window = statistics(np.random.default_rng(2).uniform(0.0, 0.2, 200))
    index = report.build_report(runs(), [], tmp_path / "rep", window_statistics=window, baseline_statistics=base)
    page = index.read_text()
    for chart in dqr.CHARTS:
        assert (tmp_path / "rep" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"src='{chart}'" in page
    assert "Data quality (no labels needed)" in page
    assert "<td class='l'>char3_jaccard, word1_f1</td>" in page  # the shifted window's drifted features
    assert "0.780" in page and "0.900 (0.850–0.950)" in page  # realized beside estimated
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["data_quality"]["most_drifted"][:2] == ["word1_f1", "char3_jaccard"]
    assert data["data_quality"]["histograms"] == ["word1_f1", "char3_jaccard"]  # those both documents have
    assert data["data_quality"]["drift"]["word1_f1"] == [0.0, 0.0, 0.41]


def test_without_statistics_no_histograms_and_without_blocks_no_section(tmp_path):
    page = report.build_report(runs(), [], tmp_path / "a").read_text()
    assert "data_quality_drift.png" in page and "data_quality_histograms.png" not in page
    assert "No histograms" in page
    page = report.build_report(runs()[:1], [], tmp_path / "b").read_text()
    assert "Data quality" not in page and not (tmp_path / "b" / "data_quality_drift.png").exists()


def test_the_histogram_inputs_are_read_from_the_run_and_the_served_package(aws_clients, boto_client):
    """The window's statistics under the run's output, the baseline's through the package's
    DriftCheckBaselines.ModelDataQuality (moto's S3, Stubber's SageMaker); what is missing is a reason."""
    import boto3
    from botocore.stub import Stubber
    from moto import mock_aws

    from stsmon.monitoring import runs as monitor_runs

    arn = "arn:aws:sagemaker:us-east-1:111122223333:model-package/sts-models/3"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="sts-bucket")
        window = statistics(np.zeros(3))
        s3.put_object(Bucket="sts-bucket", Key="mon/e1/data-quality/statistics.json", Body=json.dumps(window).encode())
        s3.put_object(Bucket="sts-bucket", Key="pipe/dq/statistics.json", Body=b'{"version": 0.0, "features": []}')
        sm = boto_client("sagemaker")
        clients = aws_clients({"s3": s3, "sagemaker": sm})
        with Stubber(sm) as stub:
            base = {"ModelPackageName": "sts-models", "ModelPackageArn": arn, "CreationTime": T0,
                    "ModelPackageStatus": "Completed",
                    "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []}}
            stub.add_response("describe_model_package", base | {"DriftCheckBaselines": {"ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": "s3://sts-bucket/pipe/dq/statistics.json"}}}},
                {"ModelPackageName": arn})
            stub.add_response("describe_model_package", base, {"ModelPackageName": arn})
            assert monitor_runs.data_quality_statistics(clients, "s3://sts-bucket/mon/e1/") == (window, "")
            assert monitor_runs.baseline_data_quality_statistics(clients, arn) == ({"version": 0.0, "features": []}, "")
            doc, why = monitor_runs.baseline_data_quality_statistics(clients, arn)
            assert doc is None and "has no data-quality baseline (DriftCheckBaselines.ModelDataQuality)" in why
        doc, why = monitor_runs.data_quality_statistics(clients, "s3://sts-bucket/mon/e2")
        assert doc is None and why.startswith("s3://sts-bucket/mon/e2/data-quality/statistics.json: ")
        assert monitor_runs.baseline_data_quality_statistics(clients, "") == (
            None, "the endpoint serves no registered model package")


def test_the_section_reads_what_the_monitor_writes(tmp_path):
    """Two real windows through monitor.main (the fixture of tests/processing_scripts/
    test_monitor_data_quality.py): in-distribution, then mismatched, no labels; the report's section
    draws them from the written monitoring_result.json and data-quality/statistics.json."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "processing_scripts"))
    import test_monitor_data_quality as fx

    from stscontracts import names

    found, statistics_doc = [], None
    for hour, rows in enumerate((fx._in_distribution(), fx._mismatched())):
        w = fx.Window(tmp_path / f"w{hour}")
        w.dq = fx._baseline(tmp_path / "dq-baseline") if hour == 0 else tmp_path / "dq-baseline"
        w.traffic(rows)
        code, result = w.run()
        assert code == 0
        result["window"] = {k: (T0 + timedelta(hours=hour + int(k == "end"))).isoformat() for k in ("start", "end")}
        found.append(report.RunResult.from_result(f"e{hour}", result))
        statistics_doc = w.dq_file(names.STATISTICS_FILE)
    baseline_doc = json.loads((tmp_path / "dq-baseline" / names.STATISTICS_FILE).read_text())
    assert [r.data_quality["status"] for r in found] == ["Completed", "CompletedWithViolations"]
    top = dqr.most_drifted(found[-1])
    assert set(top) & {"word1_f1", "char3_jaccard", "rouge_l_f1"}
    page = report.build_report(found, [], tmp_path / "rep", window_statistics=statistics_doc,
                               baseline_statistics=baseline_doc).read_text()
    for chart in dqr.CHARTS:
        assert f"src='{chart}'" in page
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["data_quality"]["histograms"] == top  # every most-drifted feature is in both documents
    assert all(v == 0 for v in data["data_quality"]["drift"]["word1_f1"][:1])  # the in-distribution hour
