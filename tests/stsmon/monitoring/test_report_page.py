"""stsmon report: charts and page from monitoring results; the page renders in headless Chromium."""

from __future__ import annotations

import os
import shutil
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from stsmon.monitoring import report

T0 = datetime(2026, 11, 27, 0, tzinfo=timezone.utc)
CONSTRAINTS = {"accuracy": {"threshold": 0.72, "comparison_operator": "LessThanThreshold"},
               "f1": {"threshold": 0.75, "comparison_operator": "LessThanThreshold"},
               "auc": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def result(hour: int, accuracy: float, *, status: str | None = None, reason: str = "") -> dict:
    violations = [{"metric_name": "accuracy", "constraint_check_type": "LessThanThreshold",
                   "description": f"Metric accuracy with {accuracy} was LessThanThreshold 0.72"}] if accuracy < 0.72 and not status else []
    start = T0 + timedelta(hours=hour)
    return {
        "status": status or ("CompletedWithViolations" if violations else "Completed"), "failure_reason": reason,
        "problem_type": "BinaryClassification",
        "window": {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()},
        "counts": {"captured": 1725, "labelled": 1700, "matched": 1700, "unmatched_captures": 25, "unmatched_labels": 0,
                   "duplicate_captures": 0, "duplicate_labels": 3, "malformed_capture_lines": 1, "malformed_label_lines": 0},
        "metrics": {} if status == "Failed" else {"accuracy": accuracy, "f1": accuracy + 0.05, "auc": accuracy + 0.08},
        "constraints": CONSTRAINTS, "violations": violations,
        "confusion_matrix": {"0": {"0": 500, "1": 90}, "1": {"0": 150, "1": 960}},
    }


def sample_runs() -> list[report.RunResult]:
    runs = [report.RunResult.from_result(f"e{h}", result(h, 0.78 - 0.004 * h)) for h in range(10)]
    runs.append(report.RunResult.from_result("e10", result(10, 0.0, status="Failed", reason="no capture records in the window")))
    runs.append(report.RunResult.from_result("e11", result(11, 0.61)))  # the drill: 30 % noise
    runs.append(report.RunResult.from_result("e12", None, failure="input capture: no S3 objects found"))
    return runs


ALARMS = [{"name": "sts-quality-accuracy", "state": "ALARM", "reason": "Threshold Crossed", "metric": "accuracy"},
          {"name": "sts-quality-f1", "state": "OK", "reason": "ok", "metric": "f1"}]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_report_writes_page_charts_and_data(tmp_path):
    index = report.build_report(sample_runs(), ALARMS, tmp_path / "rep")
    page = index.read_text()
    for chart in report.CHARTS:
        width, height = png_size(tmp_path / "rep" / chart)
        assert width > 300 and height > 200
        assert f"src='{chart}'" in page
    assert "Metric accuracy with 0.61 was LessThanThreshold 0.72" in page
    assert "sts-quality-accuracy" in page and "no capture records in the window" in page
    assert page.count("<tr>") >= 13 + 2 + 1  # runs + alarms + violations
    assert "<script" not in page


def test_a_relabelled_window_is_replacements_not_faults(tmp_path):
    """The drill relabels a window: every label of it gets a newer one. Those are replaced labels,
    charted apart (not in red as malformed or duplicate lines) and in their own table column; results
    written before the count was named so (``duplicate_labels``) read the same way."""
    clean = result(0, 0.78)
    clean["counts"] = {"captured": 870, "labelled": 870, "matched": 870, "unmatched_captures": 0,
                       "unmatched_labels": 0, "duplicate_captures": 0, "replaced_labels": 0,
                       "malformed_capture_lines": 0, "malformed_label_lines": 0}
    drill = result(1, 0.61)
    drill["counts"] = dict(clean["counts"], replaced_labels=870)
    old = result(2, 0.61)
    old["counts"] = {k: v for k, v in drill["counts"].items() if k != "replaced_labels"} | {"duplicate_labels": 870}
    runs = [report.RunResult.from_result(f"e{i}", r) for i, r in enumerate((clean, drill, old))]
    series = report.record_series(runs)
    assert series["faults"] == [0, 0, 0] and series["replaced"] == [0, 870, 870]
    page = report.build_report(runs, [], tmp_path / "rep").read_text()
    assert "<th>replaced labels</th>" in page and page.count("<td>870</td><td class='l'><code>") == 2
    lines = report.result_lines(drill)
    assert any("labels replaced by a newer one 870" in line and "duplicate captures 0" in line for line in lines)


def test_report_replaces_the_folder_and_handles_no_runs(tmp_path):
    out = tmp_path / "rep"
    report.build_report(sample_runs(), ALARMS, out)
    index = report.build_report([], [], out)
    assert "No monitoring runs yet" in index.read_text()
    assert not (out / "metrics_over_time.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no staging folder left


def test_terminal_summary_marks_violations_and_alarms():
    lines = report.summary_lines(sample_runs(), ALARMS, last=4)
    assert lines[0].split()[:4] == ["window", "end", "(UTC)", "status"]
    assert any("0.6100!" in line and "CompletedWithViolations" in line for line in lines)
    assert "13 runs: 10 Completed, 1 CompletedWithViolations, 2 Failed  (! = violation)" in lines
    assert any(line.startswith("alarm sts-quality-accuracy: ALARM") for line in lines)
    assert report.summary_lines([], []) == ["No monitoring runs yet: run `stsmon monitor run` (or wait for the hourly schedule)."]


def test_result_lines_show_counts_metrics_and_violations():
    lines = report.result_lines(dict(result(3, 0.61), label_coverage=0.985, checks=[
        {"metric_name": "accuracy", "status": "Violation"}, {"metric_name": "f1", "status": "OK"}]))
    text = "\n".join(lines)
    assert "CompletedWithViolations" in lines[0]
    assert "captured 1725, labelled 1700, matched 1700 (coverage 98%)" in text
    assert "VIOLATION" in text and "violation: Metric accuracy with 0.61" in text
    assert report.result_lines(None, failure="boom") == ["Status: Failed — boom"]


@pytest.mark.slow
def test_page_renders_in_headless_chromium_with_its_charts_and_no_console_errors(tmp_path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("Debian's chromium is not installed (./run.sh test installs it; apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    index = report.build_report(sample_runs(), ALARMS, tmp_path / "rep")
    messages, page_errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1360, "height": 900})
        try:
            page = browser.new_page()
            page.on("console", lambda m: messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(index.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({src: e.getAttribute('src'), done: e.complete, w: e.naturalWidth, h: e.naturalHeight}))")
            title = page.title()
            heading = page.inner_text("h1")
            shot = Path(os.environ.get("STSMON_REPORT_SCREENSHOT") or tmp_path / "report.png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert sorted(i["src"] for i in images) == sorted(report.CHARTS)
    assert all(i["done"] and i["w"] > 300 and i["h"] > 200 for i in images), images
    assert [m for m in messages if m[0] == "error"] == [] and page_errors == []
    assert title == heading == "Model quality monitoring"
    width, height = png_size(shot)
    assert width >= 1000 and height > 900


def test_runs_sharing_a_window_are_charted_side_by_side():
    from datetime import datetime, timezone

    from stsmon.monitoring.report import RunResult, _run_axis

    def run(hour):
        end = datetime(2026, 11, 27, hour, tzinfo=timezone.utc)
        return RunResult("e", "Completed", "", None, end, {}, {}, {}, [], None, "", None)

    xs, labels, title = _run_axis([run(12), run(13)])
    assert labels is None and [x.hour for x in xs] == [12, 13] and title == "window end, UTC"
    xs, labels, _ = _run_axis([run(12), run(12), run(13)])
    assert xs == [0, 1, 2] and labels == ["11-27 12:00 #1", "11-27 12:00 #2", "11-27 13:00 #1"]


def test_result_lines_show_the_label_free_half():
    """A window with no labels: the model-quality half is not evaluated, the data-quality half's verdict,
    violations and estimates are shown (the shape processing_scripts/monitor.py writes)."""
    unlabelled = dict(result(3, 0.8), status="CompletedWithViolations", metrics={}, violations=[],
                      model_quality={"status": "NotEvaluated", "reason": "none of the 200 captured records has a label"},
                      data_quality={"status": "CompletedWithViolations", "reason": "", "records": 200, "sampled": False,
                                    "violations": [{"feature_name": "word1_f1", "constraint_check_type": "baseline_drift_check",
                                                    "description": "Baseline drift distance: 0.83 exceeds threshold: 0.05 (Robust)"}],
                                    "estimated": {"metrics": {"accuracy": {"value": 0.55, "lower": 0.5, "upper": 0.6,
                                                                           "status": "Violation"}},
                                                  "violations": [], "records": 200, "reliable": True, "reason": ""}})
    lines = report.result_lines(unlabelled)
    assert "  model quality: not evaluated (none of the 200 captured records has a label)" in lines
    assert "  data quality: CompletedWithViolations; 200 records" in lines
    assert any("word1_f1: Baseline drift distance: 0.83" in line for line in lines)
    assert "  estimated before labels (95% interval): accuracy 0.5500 [0.5000, 0.6000] VIOLATION" in lines
    assert report.data_quality_lines(result(3, 0.8)) == []  # an older result: nothing to add

