"""``stsmon report``: model quality over time as an HTML page with PNG charts, and a terminal summary.

Input: the monitoring results (``monitoring_result.json`` of each monitoring
execution, oldest first) and the alarm states (``{name, metric, state, reason}``,
:func:`stsmon.monitoring.runs.alarm_states`). Output folder (default
``{state}/reports/monitoring/``): ``index.html``, ``metrics_over_time.png``
(each constrained metric per window against its threshold, violations in
red, failed runs marked), ``records_over_time.png`` (matched / unmatched /
malformed lines and duplicate captures per window, and the labels a newer
label of the same id replaced — a relabel, not a fault), ``confusion_matrix.png`` (the
latest window with labels, classification) and ``report.json`` (the data
behind the page). The page has no script and no external resource.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stscontracts import metrics as registry
from stscontracts.names import PROBLEM_TYPES

STATUS_COLOURS = {"Completed": "#1a7f37", "CompletedWithViolations": "#b35900", "Failed": "#c62828"}
CHARTS = ("metrics_over_time.png", "records_over_time.png", "confusion_matrix.png")


@dataclass(frozen=True)
class RunResult:
    """One monitoring run as the report sees it."""

    execution_id: str
    status: str  # Completed | CompletedWithViolations | Failed
    failure_reason: str
    window_start: datetime | None
    window_end: datetime | None
    counts: dict[str, int]
    metrics: dict[str, Any]
    constraints: dict[str, dict[str, Any]]
    violations: list[dict[str, Any]]
    confusion_matrix: dict[str, dict[str, int]] | None
    problem_type: str
    report_path: str | None  # the run's own report.html (local path or s3:// URI)
    data_quality: dict[str, Any] = field(default_factory=dict)  # the result's data_quality block

    @classmethod
    def from_result(cls, execution_id: str, result: dict[str, Any] | None, *, failure: str = "",
                    report_path: str | None = None) -> RunResult:
        if result is None:  # the execution itself failed: no result file
            return cls(execution_id, "Failed", failure or "the monitoring execution failed", None, None, {}, {}, {}, [],
                       None, "", report_path)
        window = result.get("window") or {}
        return cls(
            execution_id, result["status"], result.get("failure_reason", ""),
            _time(window.get("start")), _time(window.get("end")), normalized_counts(result.get("counts")),
            dict(result.get("metrics") or {}), dict(result.get("constraints") or {}), list(result.get("violations") or []),
            result.get("confusion_matrix"), result.get("problem_type", ""), report_path,
            dict(result.get("data_quality") or {}),
        )


def normalized_counts(counts: dict[str, int] | None) -> dict[str, int]:
    """A result's counts; results written before labels were told apart from faults call the labels a
    newer label replaced ``duplicate_labels`` (same meaning: the latest label of an id counts)."""
    counts = dict(counts or {})
    if "duplicate_labels" in counts and "replaced_labels" not in counts:
        counts["replaced_labels"] = counts.pop("duplicate_labels")
    return counts


def record_series(runs: Sequence[RunResult]) -> dict[str, list[int]]:
    """Per run, what the records chart draws: ``matched``, ``unmatched`` captures, ``faults``
    (malformed capture and label lines, duplicate captures — red) and ``replaced`` labels (a newer
    label of the same inference id replaced them: a relabel, drawn apart and not as a fault)."""
    return {
        "matched": [r.counts.get("matched", 0) for r in runs],
        "unmatched": [r.counts.get("unmatched_captures", 0) for r in runs],
        "faults": [r.counts.get("malformed_capture_lines", 0) + r.counts.get("malformed_label_lines", 0)
                   + r.counts.get("duplicate_captures", 0) for r in runs],
        "replaced": [r.counts.get("replaced_labels", 0) for r in runs],
    }


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "n/a"


def monitored_metrics(runs: Sequence[RunResult]) -> list[str]:
    """The constrained metrics (in the order the baseline lists them); else the registry's monitored ones."""
    names: list[str] = []
    for run in runs:
        for name in run.constraints:
            if name not in names:
                names.append(name)
    if names:
        return names
    seen = {name for run in runs for name in run.metrics}
    for group in (registry.monitored_metrics(problem_type) for problem_type in PROBLEM_TYPES):
        if seen & set(group):
            return [n for n in group if n in seen]
    return []


# ---------------------------------------------------------------------------------------- charts


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _run_axis(runs: Sequence[RunResult]) -> tuple[list[Any], list[str] | None, str]:
    """x positions of ``runs``: their window ends, or — when several runs share a
    window (a rerun, a drill right after a clean run) — their order, labelled
    with the window and the run's number in it, so reruns stand side by side
    instead of on one vertical line."""
    ends = [r.window_end for r in runs]
    if len(set(ends)) == len(ends):
        return ends, None, "window end, UTC"
    seen: dict[Any, int] = {}
    labels = []
    for end in ends:
        seen[end] = seen.get(end, 0) + 1
        labels.append(f"{end:%m-%d %H:%M} #{seen[end]}")
    return list(range(len(runs))), labels, "window end, UTC, and run number within the window"


def chart_metrics(runs: Sequence[RunResult], names: list[str], path: Path) -> bool:
    timed = [r for r in runs if r.window_end is not None]
    if not names or not timed:
        return False
    plt = _plt()
    xs_all, labels, axis_title = _run_axis(timed)
    x_of = {id(r): x for r, x in zip(timed, xs_all)}
    cols = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 2.8 * rows), squeeze=False, sharex=True)
    for ax, name in zip(axes.flat, names):
        ok = [r for r in timed if _finite(r.metrics.get(name)) and r.status != "Failed"]
        ax.plot([x_of[id(r)] for r in ok], [r.metrics[name] for r in ok], "-o", color="#2166ac", markersize=4,
                linewidth=1.5, label=name, zorder=2)
        bad = [(x_of[id(r)], r.metrics[name]) for r in timed
               if any(v["metric_name"] == name for v in r.violations) and _finite(r.metrics.get(name))]
        if bad:
            ax.scatter(*zip(*bad), color="#c62828", s=40, zorder=3, label="violation")
        limits = [r for r in timed if name in r.constraints]
        if limits:
            ax.step([x_of[id(r)] for r in limits], [r.constraints[name]["threshold"] for r in limits], where="post",
                    linestyle="--", color="#444", linewidth=1.2, label="threshold")
        failed = [x_of[id(r)] for r in timed if r.status == "Failed"]
        if failed:
            ax.scatter(failed, [ax.get_ylim()[0]] * len(failed), marker="x", color="#8a8f98", s=30, zorder=3,
                       label="failed run", clip_on=False)
        op = next((r.constraints[name]["comparison_operator"] for r in reversed(timed) if name in r.constraints), "")
        ax.set_title(f"{name}" + (f"  (violation when {op.replace('Threshold', '')} threshold)" if op else ""), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        if labels is not None:
            ax.set_xticks(xs_all, labels, rotation=30, ha="right", fontsize=8)
            ax.set_xlim(-0.5, len(xs_all) - 0.5)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    if labels is None:
        fig.autofmt_xdate()
    fig.suptitle(f"Model quality per monitoring run ({axis_title})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def chart_records(runs: Sequence[RunResult], path: Path) -> bool:
    timed = [r for r in runs if r.window_end is not None and r.counts]
    if not timed:
        return False
    plt = _plt()
    import numpy as np

    fig, ax = plt.subplots(figsize=(12.4, 3.2))
    x = np.arange(len(timed))
    series = {k: np.array(v) for k, v in record_series(timed).items()}
    matched, unmatched, problems = series["matched"], series["unmatched"], series["faults"]
    ax.bar(x, matched, color="#2166ac", label="matched (labelled captures)")
    ax.bar(x, unmatched, bottom=matched, color="#92c5de", label="captures without label")
    ax.bar(x, problems, bottom=matched + unmatched, color="#c62828", label="malformed lines or duplicate captures")
    if series["replaced"].any():  # not records of the window: a marker beside the bars, not stacked on them
        shown = series["replaced"] > 0
        ax.plot(x[shown], series["replaced"][shown], linestyle="none", marker="D", color="#5e3c99",
                label="labels replaced by a newer label of the same id")
    _, labels, _ = _run_axis(timed)
    ax.set_xticks(x, labels or [r.window_end.strftime("%m-%d %H:%M") for r in timed], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("records")
    ax.set_title("Records per monitoring window", fontsize=11)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def chart_confusion(run: RunResult | None, path: Path) -> bool:
    if run is None or not run.confusion_matrix:
        return False
    plt = _plt()
    cells = [[int(run.confusion_matrix.get(a, {}).get(p, 0)) for p in ("0", "1")] for a in ("0", "1")]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image = ax.imshow(cells, cmap="Blues")
    top = max(max(row) for row in cells) or 1
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cells[i][j]), ha="center", va="center", fontsize=14,
                    color="white" if cells[i][j] > top * 0.55 else "black")
    ax.set_xticks([0, 1], ["0", "1"])
    ax.set_yticks([0, 1], ["0", "1"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    end = run.window_end.strftime("%Y-%m-%d %H:%M") if run.window_end else ""
    ax.set_title(f"Confusion matrix, window ending {end}", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------- page


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1320px;color:#1f2328;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.meta{color:#57606a} .badge{display:inline-block;color:#fff;border-radius:1rem;padding:.15rem .7rem;font-weight:600;font-size:.9rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} td,th{border:1px solid #d0d7de;padding:.3rem .55rem;text-align:right}
th{background:#f6f8fa} td.l,th.l{text-align:left} .viol{color:#c62828;font-weight:600} .muted{color:#8a8f98}
img{max-width:100%;border:1px solid #d0d7de;border-radius:6px;margin:.4rem 0}
.cards{display:flex;gap:1rem;flex-wrap:wrap} .card{border:1px solid #d0d7de;border-radius:8px;padding:.7rem 1rem;min-width:10rem}
.card b{font-size:1.3rem;display:block}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _badge(status: str) -> str:
    return f"<span class='badge' style='background:{STATUS_COLOURS.get(status, '#8a8f98')}'>{_e(status)}</span>"


def _link(target: str | None, out_dir: Path) -> str:
    if not target:
        return ""
    if target.startswith("s3://"):
        return f"<code>{_e(target)}</code>"
    rel = os.path.relpath(target, out_dir)
    return f"<a href='{_e(Path(rel).as_posix())}'>report</a>"


def render_page(runs: Sequence[RunResult], alarms: list[dict[str, Any]], charts: list[str], names: list[str],
                out_dir: Path, title: str, data_quality_section: str = "") -> str:
    latest = runs[-1] if runs else None
    counts = {s: sum(1 for r in runs if r.status == s) for s in STATUS_COLOURS}
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1>"]
    if latest is None:
        parts.append("<p>No monitoring runs yet: run <code>stsmon monitor run</code> or wait for the schedule.</p>")
    else:
        window = (f"window {latest.window_start:%Y-%m-%d %H:%M} to {latest.window_end:%H:%M} UTC"
                  if latest.window_start and latest.window_end else f"execution {latest.execution_id}")
        parts.append(f"<p class='meta'>Latest run, {_e(window)}: {_badge(latest.status)} "
                     f"{_e(latest.failure_reason)}</p>")
        parts.append("<div class='cards'>")
        parts.append(f"<div class='card'>runs<b>{len(runs)}</b></div>")
        for status, n in counts.items():
            parts.append(f"<div class='card'>{_e(status)}<b style='color:{STATUS_COLOURS[status]}'>{n}</b></div>")
        in_alarm = [a for a in alarms if a.get("state") == "ALARM"]
        parts.append(f"<div class='card'>alarms in ALARM<b style='color:{'#c62828' if in_alarm else '#1a7f37'}'>"
                     f"{len(in_alarm)} / {len(alarms)}</b></div></div>")
    if "metrics_over_time.png" in charts:
        parts.append("<h2>Metrics over time against their thresholds</h2>"
                     "<img src='metrics_over_time.png' alt='metrics over time against thresholds'>")
    violations = [(r, v) for r in runs for v in r.violations]
    parts.append("<h2>Violations</h2>")
    if violations:
        parts.append("<table><tr><th class='l'>window end</th><th class='l'>metric</th><th class='l'>check</th>"
                     "<th class='l'>description</th></tr>")
        for run, v in reversed(violations[-50:]):
            parts.append(f"<tr><td class='l'>{run.window_end:%Y-%m-%d %H:%M}</td><td class='l'>{_e(v['metric_name'])}</td>"
                         f"<td class='l'>{_e(v['constraint_check_type'])}</td><td class='l viol'>{_e(v['description'])}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No constraint violations.</p>")
    if alarms:
        parts.append("<h2>Alarms</h2><table><tr><th class='l'>alarm</th><th class='l'>metric</th><th class='l'>state</th>"
                     "<th class='l'>reason</th></tr>")
        for alarm in alarms:
            css = "viol" if alarm.get("state") == "ALARM" else ""
            parts.append(f"<tr><td class='l'>{_e(alarm['name'])}</td><td class='l'>{_e(alarm.get('metric') or '')}</td>"
                         f"<td class='l {css}'>{_e(alarm.get('state', ''))}</td><td class='l'>{_e(alarm.get('reason', ''))}</td></tr>")
        parts.append("</table>")
    if "confusion_matrix.png" in charts or "records_over_time.png" in charts:
        parts.append("<h2>Latest confusion matrix and record counts</h2>")
        if "confusion_matrix.png" in charts:
            parts.append("<img src='confusion_matrix.png' alt='confusion matrix of the latest window' style='max-width:420px'>")
        if "records_over_time.png" in charts:
            parts.append("<img src='records_over_time.png' alt='records per window'>")
    if data_quality_section:
        parts.append(data_quality_section)
    if runs:
        parts.append("<h2>Runs</h2><table><tr><th class='l'>window end (UTC)</th><th class='l'>status</th>"
                     + "".join(f"<th>{_e(n)}</th>" for n in names)
                     + "<th>captured</th><th>labelled</th><th>matched</th><th>malformed</th><th>duplicate captures</th>"
                       "<th>replaced labels</th>"
                       "<th class='l'>execution</th><th class='l'>details</th></tr>")
        for run in reversed(list(runs)[-200:]):
            c = run.counts
            cells = "".join(
                f"<td class='{'viol' if any(v['metric_name'] == n for v in run.violations) else ''}'>{_fmt(run.metrics.get(n))}</td>"
                for n in names)
            end = f"{run.window_end:%Y-%m-%d %H:%M}" if run.window_end else "<span class='muted'>—</span>"
            parts.append(
                f"<tr><td class='l'>{end}</td><td class='l'>{_badge(run.status)}</td>{cells}"
                f"<td>{c.get('captured', '')}</td><td>{c.get('labelled', '')}</td><td>{c.get('matched', '')}</td>"
                f"<td>{c.get('malformed_capture_lines', 0) + c.get('malformed_label_lines', 0) if c else ''}</td>"
                f"<td>{c.get('duplicate_captures', 0) if c else ''}</td>"
                f"<td>{c.get('replaced_labels', 0) if c else ''}</td>"
                f"<td class='l'><code>{_e(run.execution_id)}</code></td>"
                f"<td class='l'>{_link(run.report_path, out_dir)} <span class='muted'>{_e(run.failure_reason)}</span></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _data_quality_part(runs: Sequence[RunResult], staging: Path, charts: list[str],
                       window_statistics: dict[str, Any] | None,
                       baseline_statistics: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Draw the data-quality charts into ``staging`` (appending their names to ``charts``); returns
    (the page's section, the data behind it for report.json)."""
    from . import data_quality_report as dq

    if not dq.judged(runs) and not any(r.data_quality for r in runs):
        return "", {}
    plt = _plt()
    if dq.chart_drift(runs, staging / "data_quality_drift.png", plt):
        charts.append("data_quality_drift.png")
    latest = (dq.judged(runs) or [None])[-1]
    drawn = dq.chart_histograms(latest, window_statistics, baseline_statistics,
                                staging / "data_quality_histograms.png", plt)
    if drawn:
        charts.append("data_quality_histograms.png")
    if dq.chart_estimated(runs, staging / "estimated_quality.png", plt):
        charts.append("estimated_quality.png")
    series, thresholds = dq.drift_series(runs)
    data = {"drift": {name: [v if math.isfinite(v) else None for v in values] for name, values in series.items()},
            "thresholds": [t if math.isfinite(t) else None for t in thresholds],
            "most_drifted": dq.most_drifted(latest) if latest else [], "histograms": drawn}
    return dq.section_html(runs, charts, drawn, _e), data


def build_report(runs: Sequence[RunResult], alarms: list[dict[str, Any]], out_dir: Path,
                 title: str = "Model quality monitoring", *,
                 window_statistics: dict[str, Any] | None = None,
                 baseline_statistics: dict[str, Any] | None = None) -> Path:
    """Write the page and its charts into ``out_dir`` (replaced as a whole); returns index.html.

    ``window_statistics`` / ``baseline_statistics``: the latest judged window's data-quality
    statistics.json and the served package's baseline one, for the histograms of its most-drifted
    features (without them the data-quality section has no histograms).
    """
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        names = monitored_metrics(runs)
        charts = []
        if chart_metrics(runs, names, staging / "metrics_over_time.png"):
            charts.append("metrics_over_time.png")
        if chart_records(runs, staging / "records_over_time.png"):
            charts.append("records_over_time.png")
        latest_labelled = next((r for r in reversed(list(runs)) if r.confusion_matrix), None)
        if chart_confusion(latest_labelled, staging / "confusion_matrix.png"):
            charts.append("confusion_matrix.png")
        section, dq_data = _data_quality_part(runs, staging, charts, window_statistics, baseline_statistics)
        (staging / "index.html").write_text(render_page(runs, alarms, charts, names, out_dir, title, section),
                                            encoding="utf-8")
        data = {"runs": [{"execution_id": r.execution_id, "status": r.status, "failure_reason": r.failure_reason,
                          "window_start": r.window_start.isoformat() if r.window_start else None,
                          "window_end": r.window_end.isoformat() if r.window_end else None,
                          "counts": r.counts, "metrics": r.metrics, "violations": r.violations,
                          "data_quality_status": r.data_quality.get("status")} for r in runs],
                "alarms": [{"name": a["name"], "state": a.get("state")} for a in alarms], "charts": charts,
                "data_quality": dq_data}
        (staging / "report.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir / "index.html"


# ---------------------------------------------------------------------------------------- terminal


def result_lines(result: dict[str, Any] | None, *, failure: str = "") -> list[str]:
    """One run's result for the terminal (stsmon monitor run)."""
    if result is None:
        return [f"Status: Failed — {failure or 'the monitoring execution failed'}"]
    w = result["window"]
    lines = [f"Window {w['start']} .. {w['end']} (UTC, end excluded): {result['status']}"]
    if result.get("failure_reason"):
        lines.append(f"  reason: {result['failure_reason']}")
    c = normalized_counts(result["counts"])
    lines.append(f"  records: captured {c['captured']}, labelled {c['labelled']}, matched {c['matched']} "
                 f"(coverage {result.get('label_coverage', 0):.0%}); unmatched captures {c['unmatched_captures']}, "
                 f"unmatched labels {c['unmatched_labels']}; duplicate captures {c['duplicate_captures']}; "
                 f"labels replaced by a newer one {c['replaced_labels']}; malformed lines {c['malformed_capture_lines']}/{c['malformed_label_lines']}")
    checks = {ch["metric_name"]: ch for ch in result.get("checks", [])}
    shown = list(result.get("constraints") or {}) or [m for m in ("accuracy", "f1", "auc", "mae", "rmse", "r2")
                                                      if m in result.get("metrics", {})]
    if result.get("metrics"):
        lines.append("  metric        value   constraint")
        for name in shown:
            value = result["metrics"].get(name)
            spec = (result.get("constraints") or {}).get(name)
            verdict = checks.get(name, {}).get("status", "")
            mark = "VIOLATION" if verdict == "Violation" else ("ok" if verdict == "OK" else verdict)
            rule = f"{'<' if 'Less' in spec['comparison_operator'] else '>'} {spec['threshold']:.4f} is bad" if spec else ""
            lines.append(f"  {name:<11} {_fmt(value):>8}   {rule:<18} {mark}")
    for v in result.get("violations", []):
        lines.append(f"  violation: {v['description']}")
    return lines + data_quality_lines(result)


def data_quality_lines(result: dict[str, Any]) -> list[str]:
    """The label-free half of a run for the terminal: its status, the drifted features, the estimates."""
    mq, dq = result.get("model_quality") or {}, result.get("data_quality")
    lines = []
    if mq.get("status") == "NotEvaluated":
        lines.append(f"  model quality: not evaluated ({mq.get('reason', '')})")
    if not dq:
        return lines
    head = f"  data quality: {dq['status']}"
    if dq.get("reason"):
        head += f" ({dq['reason']})"
    if "records" in dq:
        head += f"; {dq['records']} records{' (a sample)' if dq.get('sampled') else ''}"
    lines.append(head)
    for v in dq.get("violations", []):
        lines.append(f"  data-quality violation: {v['feature_name']}: {v['description']}")
    estimated = (dq.get("estimated") or {}).get("metrics") or {}
    if estimated:
        lines.append("  estimated before labels (95% interval): " + ", ".join(
            f"{name} {e['value']:.4f} [{e['lower']:.4f}, {e['upper']:.4f}]{' VIOLATION' if e.get('status') == 'Violation' else ''}"
            for name, e in estimated.items()))
    return lines


def summary_lines(runs: Sequence[RunResult], alarms: list[dict[str, Any]], last: int = 12) -> list[str]:
    """The report as text: recent windows with their metrics, and the alarms."""
    if not runs:
        return ["No monitoring runs yet: run `stsmon monitor run` (or wait for the hourly schedule)."]
    names = monitored_metrics(runs)[:5]
    header = f"{'window end (UTC)':<17} {'status':<24}" + "".join(f"{n:>10}" for n in names) + f"{'matched':>9}{'captured':>9}"
    lines = [header]
    for run in list(runs)[-last:]:
        end = f"{run.window_end:%Y-%m-%d %H:%M}" if run.window_end else "-"
        vals = "".join(
            f"{_fmt(run.metrics.get(n)) + ('!' if any(v['metric_name'] == n for v in run.violations) else ' '):>10}"
            for n in names)
        lines.append(f"{end:<17} {run.status:<24}{vals}{run.counts.get('matched', ''):>9}{run.counts.get('captured', ''):>9}")
    counts = {s: sum(1 for r in runs if r.status == s) for s in STATUS_COLOURS}
    lines.append(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "  (! = violation)")
    for alarm in alarms:
        lines.append(f"alarm {alarm['name']}: {alarm.get('state')}"
                     + (f" — {alarm.get('reason')}" if alarm.get("state") == "ALARM" else ""))
    return lines
