"""The monitor job's human report: one self-contained HTML page with inline SVG charts.

Shipped next to ``monitor.py`` and run in the SageMaker scikit-learn
container, where matplotlib is not guaranteed: the charts are drawn as SVG
by hand. Standard library only. No script, no external resource: the page
renders the same from S3, a local folder or an e-mail attachment.
"""

from __future__ import annotations

import html
import math
from typing import Any

STATUS_COLOURS = {"Completed": "#1a7f37", "CompletedWithViolations": "#b35900", "Failed": "#c62828"}
OK, BAD, MUTED, INK = "#2e7d32", "#c62828", "#8a8f98", "#1f2328"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1040px;color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.meta{color:#57606a;margin:.2rem 0} .badge{display:inline-block;color:#fff;border-radius:1rem;padding:.2rem .8rem;font-weight:600}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right}
th{background:#f6f8fa} td:first-child,th:first-child{text-align:left}
.viol{color:#c62828;font-weight:600} .ok{color:#2e7d32} .na{color:#8a8f98}
.grid{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start} figure{margin:0} figcaption{color:#57606a;font-size:.9rem}
.reason{background:#fdecea;border-left:4px solid #c62828;padding:.6rem 1rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "n/a"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_bars_svg(checks: list[dict], metrics: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """Horizontal bars: each constrained metric's value, its threshold (dashed) and baseline (dot)."""
    rows = [c for c in checks] or [
        {"metric_name": name, "value": value, "threshold": None, "status": "OK"} for name, value in metrics.items()
    ]
    rows = [r for r in rows if _finite(r.get("value")) or _finite(r.get("threshold"))]
    if not rows:
        return ""
    values = [abs(r["value"]) for r in rows if _finite(r.get("value"))]
    values += [abs(r["threshold"]) for r in rows if _finite(r.get("threshold"))]
    top = max([1.0] + values)
    label_w, bar_w, row_h = 170, 560, 30
    height = row_h * len(rows) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" height="{height}" '
             f'role="img" aria-label="metrics against thresholds">']
    for i, row in enumerate(rows):
        y = 10 + i * row_h
        value = row.get("value")
        colour = BAD if row.get("status") == "Violation" else OK
        parts.append(f'<text x="0" y="{y + 17}" font-size="13" fill="{INK}">{_e(row["metric_name"])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="18" fill="#f0f2f4"/>')
        if _finite(value):
            w = max(1.0, bar_w * abs(value) / top)
            parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="18" fill="{colour}"/>')
            parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 17}" font-size="12" fill="{INK}">{_num(value, 3)}</text>')
        threshold = row.get("threshold")
        if _finite(threshold):
            x = label_w + bar_w * abs(threshold) / top
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 26}" stroke="{INK}" '
                         f'stroke-width="2" stroke-dasharray="4 2"><title>threshold {_num(threshold)}</title></line>')
        base = (baseline or {}).get(row["metric_name"], {})
        base_value = base.get("value") if isinstance(base, dict) else None
        if _finite(base_value):
            x = label_w + bar_w * abs(base_value) / top
            parts.append(f'<circle cx="{x:.1f}" cy="{y + 13}" r="4" fill="#fff" stroke="{INK}" stroke-width="2">'
                         f'<title>baseline {_num(base_value)}</title></circle>')
    y = height - 12
    parts.append(f'<text x="{label_w}" y="{y}" font-size="11" fill="{MUTED}">bar: this window · dashed line: '
                 f'threshold · circle: baseline</text></svg>')
    return "".join(parts)


def confusion_svg(matrix: dict[str, dict[str, int]]) -> str:
    """2x2 heatmap: rows actual label, columns predicted label."""
    cells = [[int(matrix.get(a, {}).get(p, 0)) for p in ("0", "1")] for a in ("0", "1")]
    top = max(1, max(max(r) for r in cells))
    size, left, head = 110, 90, 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + 2 * size + 10}" height="{head + 2 * size + 30}" '
             f'role="img" aria-label="confusion matrix">',
             f'<text x="{left + size}" y="14" font-size="13" text-anchor="middle" fill="{INK}">predicted</text>']
    for j in range(2):
        parts.append(f'<text x="{left + j * size + size / 2}" y="{head - 8}" font-size="13" text-anchor="middle">{j}</text>')
    for i in range(2):
        parts.append(f'<text x="{left - 12}" y="{head + i * size + size / 2 + 5}" font-size="13" text-anchor="end">actual {i}</text>')
        for j in range(2):
            share = cells[i][j] / top
            fill = f"rgba(33,102,172,{0.08 + 0.85 * share:.3f})"
            text = "#fff" if share > 0.55 else INK
            x, y = left + j * size, head + i * size
            parts.append(f'<rect x="{x}" y="{y}" width="{size - 4}" height="{size - 4}" fill="{fill}" rx="4"/>')
            parts.append(f'<text x="{x + size / 2 - 2}" y="{y + size / 2 + 4}" font-size="18" text-anchor="middle" '
                         f'fill="{text}">{cells[i][j]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def roc_svg(curve: dict[str, list[float]], auc: Any) -> str:
    fpr, tpr = curve.get("false_positive_rates") or [], curve.get("true_positive_rates") or []
    if len(fpr) < 2 or len(fpr) != len(tpr):
        return ""
    size, pad = 240, 36
    pts = " ".join(f"{pad + x * size:.1f},{pad + size - y * size:.1f}" for x, y in zip(fpr, tpr))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 2 * pad}" height="{size + 2 * pad}" role="img" '
            f'aria-label="ROC curve"><rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#d0d7de"/>'
            f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="{MUTED}" stroke-dasharray="4 3"/>'
            f'<polyline points="{pts}" fill="none" stroke="#2166ac" stroke-width="2"/>'
            f'<text x="{pad + size / 2}" y="{pad + size + 28}" font-size="12" text-anchor="middle">false positive rate</text>'
            f'<text x="12" y="{pad + size / 2}" font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 12 {pad + size / 2})">true positive rate</text>'
            f'<text x="{pad + size - 6}" y="{pad + size - 8}" font-size="13" text-anchor="end">AUC {_num(auc, 3)}</text></svg>')


def counts_svg(counts: dict[str, int]) -> str:
    keys = [k for k in counts]
    top = max([1] + [int(v) for v in counts.values()])
    label_w, bar_w, row_h = 190, 420, 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" height="{row_h * len(keys) + 10}" '
             f'role="img" aria-label="record counts">']
    for i, key in enumerate(keys):
        y = 4 + i * row_h
        w = bar_w * int(counts[key]) / top
        colour = BAD if key.startswith(("malformed", "duplicate")) and counts[key] else "#2166ac"
        parts.append(f'<text x="0" y="{y + 14}" font-size="13">{_e(key.replace("_", " "))}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1 if counts[key] else 0):.1f}" height="16" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="12">{int(counts[key])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: dict[str, Any], statistics: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """The report page for one monitoring run."""
    status = result["status"]
    metrics_key = next((k for k in statistics if k.endswith("_metrics")), "")
    block = statistics.get(metrics_key, {}) if metrics_key else {}
    window = result["window"]
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Model quality {_e(window['start'])} .. {_e(window['end'])} — {_e(status)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Model quality: <span class='badge' style='background:{STATUS_COLOURS.get(status, MUTED)}'>{_e(status)}</span></h1>",
        f"<p class='meta'>Window <b>{_e(window['start'])}</b> to <b>{_e(window['end'])}</b> (UTC, end excluded) · "
        f"{_e(result.get('problem_type', ''))} · endpoint {_e(result.get('endpoint_name') or '-')} · "
        f"schedule {_e(result.get('schedule_name') or '-')} · evaluated {_e(result.get('execution_time', ''))}</p>",
    ]
    if result.get("failure_reason"):
        out.append(f"<p class='reason'>{_e(result['failure_reason'])}</p>")
    violations = result.get("violations", [])
    out.append("<h2>Constraint violations</h2>")
    if violations:
        out.append("<ul>" + "".join(f"<li class='viol'>{_e(v['description'])}</li>" for v in violations) + "</ul>")
    elif status == "Failed":
        out.append("<p class='na'>Not evaluated: the run failed (see the reason above).</p>")
    else:
        out.append(f"<p class='ok'>None: every one of the {len(result.get('checks', []))} constraints holds.</p>")

    bars = metric_bars_svg(result.get("checks", []), result.get("metrics", {}), baseline)
    charts = []
    if bars:
        charts.append(f"<figure>{bars}<figcaption>Metrics of this window against the baseline constraints</figcaption></figure>")
    if block.get("confusion_matrix"):
        charts.append(f"<figure>{confusion_svg(block['confusion_matrix'])}<figcaption>Confusion matrix</figcaption></figure>")
    roc = block.get("receiver_operating_characteristic_curve")
    if roc:
        svg = roc_svg(roc, block.get("auc", {}).get("value"))
        if svg:
            charts.append(f"<figure>{svg}<figcaption>ROC curve</figcaption></figure>")
    if charts:
        out.append("<h2>Charts</h2><div class='grid'>" + "".join(charts) + "</div>")

    if block:
        out.append("<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>std. dev.</th><th>baseline</th>"
                   "<th>constraint</th><th>check</th></tr>")
        checks = {c["metric_name"]: c for c in result.get("checks", [])}
        constraints = result.get("constraints", {})
        for name, entry in block.items():
            if not isinstance(entry, dict) or "value" not in entry:
                continue
            base = (baseline or {}).get(name, {})
            spec = constraints.get(name)
            check = checks.get(name, {})
            state = check.get("status", "")
            css = {"Violation": "viol", "OK": "ok"}.get(state, "na")
            out.append(
                f"<tr><td>{_e(name)}</td><td>{_num(entry['value'])}</td><td>{_num(entry.get('standard_deviation'))}</td>"
                f"<td>{_num(base.get('value') if isinstance(base, dict) else None)}</td>"
                f"<td>{_e(spec['comparison_operator'] + ' ' + _num(spec['threshold'])) if spec else ''}</td>"
                f"<td class='{css}'>{_e(state)}</td></tr>")
        out.append("</table>")

    counts = result.get("counts", {})
    out.append("<h2>Records</h2>")
    out.append(f"<figure>{counts_svg(counts)}<figcaption>Label coverage {_num(result.get('label_coverage'), 3)} "
               f"(minimum {_num(result.get('min_label_coverage'), 2)}); "
               f"{result.get('files', {}).get('capture', 0)} capture files, "
               f"{result.get('files', {}).get('ground_truth', 0)} ground-truth files</figcaption></figure>")
    examples = result.get("malformed_examples", {})
    if any(examples.values()):
        out.append("<h2>Malformed input (first examples)</h2><ul>")
        for kind, items in examples.items():
            out.extend(f"<li>{_e(kind)}: <code>{_e(item)}</code></li>" for item in items)
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)
