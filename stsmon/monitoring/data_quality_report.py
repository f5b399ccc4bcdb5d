"""``stsmon report``'s data-quality section: drift per feature over time, the most-drifted features'
histograms against the baseline, and the quality estimated before labels beside the realized one.

Reads what the monitor writes (docs/monitoring.md, docs/CONTRACTS.md): each run's
``monitoring_result.json`` ``data_quality`` block — ``status``, ``comparison_method``,
``comparison_threshold``, ``violations`` (Model Monitor's data-quality form), ``features``
(per feature ``feature``, ``distance``, ``linf_simple``, ``linf_robust``, ``psi``,
``status``) and ``estimated`` (``metrics``: per metric ``value``, ``lower``, ``upper``,
``threshold``) — and, for the histograms, two Model Monitor data-quality ``statistics.json``
documents: the latest window's (``{run output}/data-quality/statistics.json``) and the
served package's baseline (``DriftCheckBaselines.ModelDataQuality.Statistics``). A
histogram is drawn from each document's KLL sketch (items of level ``h`` weigh ``2**h``)
on common bins, as shares, so windows and baselines of any size compare.

Charts: ``data_quality_drift.png``, ``data_quality_histograms.png``,
``estimated_quality.png``. Runs without a ``data_quality`` block (written before the
check existed, or without a data-quality baseline) are left out of them.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

#: Features named in the drift chart and drawn as histograms.
TOP_FEATURES = 4
HISTOGRAM_BINS = 20
CHARTS = ("data_quality_drift.png", "data_quality_histograms.png", "estimated_quality.png")
JUDGED = ("Completed", "CompletedWithViolations")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def judged(runs: Sequence[Any]) -> list[Any]:
    """The runs whose data-quality check judged the window (``Completed`` or ``CompletedWithViolations``)."""
    return [r for r in runs if r.window_end is not None and (r.data_quality or {}).get("status") in JUDGED]


def drift_series(runs: Sequence[Any]) -> tuple[dict[str, list[float]], list[float]]:
    """({feature: distance per judged run, NaN where absent}, the threshold per judged run)."""
    shown = judged(runs)
    names: list[str] = []
    for run in shown:
        for entry in run.data_quality.get("features") or []:
            if entry.get("feature") not in names:
                names.append(entry["feature"])
    series = {name: [] for name in names}
    thresholds = []
    for run in shown:
        by_name = {e.get("feature"): e for e in run.data_quality.get("features") or []}
        for name in names:
            value = (by_name.get(name) or {}).get("distance")
            series[name].append(float(value) if _finite(value) else math.nan)
        threshold = run.data_quality.get("comparison_threshold")
        thresholds.append(float(threshold) if _finite(threshold) else math.nan)
    return series, thresholds


def most_drifted(run: Any, k: int = TOP_FEATURES) -> list[str]:
    """The ``k`` features of a run farthest from the baseline (by the simple L-infinity distance,
    which orders them as the robust one does and still tells apart those the robust one puts at 0)."""
    entries = [e for e in (run.data_quality or {}).get("features") or [] if _finite(e.get("linf_simple"))]
    entries.sort(key=lambda e: (-e["linf_simple"], e["feature"]))
    return [e["feature"] for e in entries[:k]]


def ranked_over_time(series: Mapping[str, list[float]], k: int = TOP_FEATURES) -> list[str]:
    """The ``k`` features with the largest distance in any run."""
    peak = {name: max((v for v in values if math.isfinite(v)), default=-1.0) for name, values in series.items()}
    return sorted(peak, key=lambda n: (-peak[n], n))[:k]


def sketch_weights(feature_statistics: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """(items, weights) of a statistics.json feature's KLL sketch; ([], []) without one."""
    kll = (((feature_statistics.get("numerical_statistics") or {}).get("distribution") or {}).get("kll") or {})
    items, weights = [], []
    for height, level in enumerate((kll.get("sketch") or {}).get("data") or []):
        items.extend(float(x) for x in level)
        weights.extend([float(1 << height)] * len(level))
    return items, weights


def histogram_pair(window_feature: Mapping[str, Any], baseline_feature: Mapping[str, Any],
                   bins: int = HISTOGRAM_BINS) -> tuple[list[float], list[float], list[float]] | None:
    """(bin edges, window shares, baseline shares) on common equal-width bins over both ranges;
    None when either side has no sketch."""
    w_items, w_weights = sketch_weights(window_feature)
    b_items, b_weights = sketch_weights(baseline_feature)
    if not w_items or not b_items:
        return None
    low, high = min(min(w_items), min(b_items)), max(max(w_items), max(b_items))
    if high <= low:
        high = low + 1.0
    edges = [low + (high - low) * i / bins for i in range(bins + 1)]

    def shares(items: list[float], weights: list[float]) -> list[float]:
        counts = [0.0] * bins
        for x, w in zip(items, weights):
            counts[min(bins - 1, int((x - low) / (high - low) * bins))] += w
        total = sum(counts)
        return [c / total for c in counts]

    return edges, shares(w_items, w_weights), shares(b_items, b_weights)


def estimated_series(runs: Sequence[Any], metric: str) -> dict[str, list[float]]:
    """Per judged run with an estimate of ``metric``: ``estimated``, ``lower``, ``upper`` and the
    ``realized`` value once labels arrived (the run's model-quality metric; NaN before)."""
    out: dict[str, list[float]] = {"estimated": [], "lower": [], "upper": [], "realized": [], "index": []}
    for i, run in enumerate(judged(runs)):
        entry = (((run.data_quality.get("estimated") or {}).get("metrics") or {}).get(metric) or {})
        if not _finite(entry.get("value")):
            continue
        out["index"].append(float(i))
        out["estimated"].append(float(entry["value"]))
        out["lower"].append(float(entry["lower"]) if _finite(entry.get("lower")) else math.nan)
        out["upper"].append(float(entry["upper"]) if _finite(entry.get("upper")) else math.nan)
        realized = run.metrics.get(metric)
        out["realized"].append(float(realized) if _finite(realized) else math.nan)
    return out


# ---------------------------------------------------------------------------------------- charts


def _labels(runs: Sequence[Any]) -> list[str]:
    return [r.window_end.strftime("%m-%d %H:%M") for r in runs]


def chart_drift(runs: Sequence[Any], path, plt) -> bool:
    series, thresholds = drift_series(runs)
    if not series:
        return False
    shown = judged(runs)
    top = ranked_over_time(series)
    fig, ax = plt.subplots(figsize=(12.4, 3.6))
    x = list(range(len(shown)))
    for name, values in series.items():
        if name not in top:
            ax.plot(x, values, color="#bbbbbb", linewidth=0.8)
    for name in top:
        ax.plot(x, series[name], marker="o", linewidth=1.6, label=name)
    ax.plot(x, thresholds, color="#c62828", linestyle="--", linewidth=1.2, label="threshold")
    for i, run in enumerate(shown):
        if any(v.get("constraint_check_type") == "baseline_drift_check" for v in run.data_quality.get("violations") or []):
            ax.axvspan(i - 0.4, i + 0.4, color="#c62828", alpha=0.08)
    method = shown[-1].data_quality.get("comparison_method", "")
    ax.set_xticks(x, _labels(shown), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"distance to baseline ({method})")
    ax.set_title("Data-quality drift per feature (grey: the other features; shaded: drift violations)", fontsize=11)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def chart_histograms(run: Any, window_statistics: Mapping[str, Any] | None,
                     baseline_statistics: Mapping[str, Any] | None, path, plt) -> list[str]:
    """The most-drifted features of ``run``, window against baseline; returns the features drawn."""
    if run is None or not window_statistics or not baseline_statistics:
        return []
    window = {f["name"]: f for f in window_statistics.get("features") or []}
    base = {f["name"]: f for f in baseline_statistics.get("features") or []}
    pairs = [(name, histogram_pair(window[name], base[name])) for name in most_drifted(run)
             if name in window and name in base]
    pairs = [(name, h) for name, h in pairs if h is not None]
    if not pairs:
        return []
    by_name = {e["feature"]: e for e in run.data_quality.get("features") or []}
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs) + 0.6, 2.9), squeeze=False)
    for ax, (name, (edges, w_shares, b_shares)) in zip(axes[0], pairs):
        ax.stairs(b_shares, edges, fill=True, color="#92c5de", alpha=0.7, label="baseline")
        ax.stairs(w_shares, edges, color="#c62828", linewidth=1.6, label="window")
        entry = by_name.get(name, {})
        distance = entry.get("distance")
        ax.set_title(f"{name}\ndistance {distance:.3f}" if _finite(distance) else name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("share of records")
    axes[0][0].legend(fontsize=7)
    end = f" ({run.window_end:%Y-%m-%d %H:%M} UTC)" if run.window_end else ""
    fig.suptitle(f"Most-drifted features of the latest window{end} against the baseline", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [name for name, _ in pairs]


def chart_estimated(runs: Sequence[Any], path, plt) -> bool:
    metrics = [m for m in ("accuracy", "f1") if estimated_series(runs, m)["estimated"]]
    if not metrics:
        return False
    shown = judged(runs)
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        s = estimated_series(runs, metric)
        ax.fill_between(s["index"], s["lower"], s["upper"], color="#92c5de", alpha=0.5, label="95 % interval")
        ax.plot(s["index"], s["estimated"], marker="o", color="#2166ac", label="estimated (no labels)")
        ax.plot(s["index"], s["realized"], marker="s", linestyle="none", color="#1b7837",
                label="realized (labels)")
        threshold = next((((r.data_quality.get("estimated") or {}).get("metrics") or {}).get(metric, {}).get("threshold")
                          for r in reversed(shown)
                          if _finite((((r.data_quality.get("estimated") or {}).get("metrics") or {}).get(metric) or {})
                                     .get("threshold"))), None)
        if threshold is not None:
            ax.axhline(threshold, color="#c62828", linestyle="--", linewidth=1.2, label="constraint")
        ax.set_xticks(range(len(shown)), _labels(shown), rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{metric}: estimated before labels vs realized", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------- page


def section_html(runs: Sequence[Any], charts: Sequence[str], histogram_features: Sequence[str], escape) -> str:
    """The page's data-quality section ("" when no run has a data-quality result)."""
    shown = judged(runs)
    not_judged = [r for r in runs if (r.data_quality or {}).get("status") not in (None, *JUDGED)]
    if not shown and not not_judged:
        return ""
    parts = ["<h2>Data quality (no labels needed)</h2>"]
    if shown:
        latest = shown[-1].data_quality
        parts.append(f"<p>Drift: a feature's {escape(latest.get('comparison_method', ''))} L-infinity distance to the "
                     f"baseline above {latest.get('comparison_threshold')}. Latest judged window: "
                     f"{escape(latest.get('status', ''))}, {latest.get('records', 0)} records"
                     + (" (sampled)" if latest.get("sampled") else "") + ".</p>")
    for chart, alt in (("data_quality_drift.png", "drift per feature over time"),
                       ("data_quality_histograms.png", "histograms of the most-drifted features against the baseline"),
                       ("estimated_quality.png", "estimated vs realized quality")):
        if chart in charts:
            parts.append(f"<img src='{chart}' alt='{alt}'>")
    if "data_quality_histograms.png" not in charts and shown:
        parts.append("<p class='muted'>No histograms: the latest window's or the baseline's data-quality "
                     "statistics.json could not be read.</p>")
    rows = []
    for run in reversed(list(runs)[-200:]):
        block = run.data_quality or {}
        if not block:
            continue
        end = f"{run.window_end:%Y-%m-%d %H:%M}" if run.window_end else "—"
        drifted = sorted({v.get("feature_name", "") for v in block.get("violations") or []
                          if v.get("constraint_check_type") == "baseline_drift_check"})
        other = sorted({f"{v.get('feature_name', '')} ({v.get('constraint_check_type', '')})"
                        for v in block.get("violations") or [] if v.get("constraint_check_type") != "baseline_drift_check"})
        est = ((block.get("estimated") or {}).get("metrics") or {}).get("accuracy") or {}
        est_text = (f"{est['value']:.3f} ({est.get('lower', math.nan):.3f}–{est.get('upper', math.nan):.3f})"
                    if _finite(est.get("value")) else "")
        realized = run.metrics.get("accuracy")
        css = "viol" if block.get("status") == "CompletedWithViolations" else ""
        rows.append(f"<tr><td class='l'>{end}</td><td class='l {css}'>{escape(block.get('status', ''))}</td>"
                    f"<td class='l'>{escape(', '.join(drifted))}</td><td class='l'>{escape(', '.join(other))}</td>"
                    f"<td>{est_text}</td><td>{f'{realized:.3f}' if _finite(realized) else ''}</td>"
                    f"<td class='l muted'>{escape(block.get('reason', ''))}</td></tr>")
    if rows:
        parts.append("<table><tr><th class='l'>window end (UTC)</th><th class='l'>data quality</th>"
                     "<th class='l'>drifted features</th><th class='l'>other violations</th>"
                     "<th>estimated accuracy (95 %)</th><th>realized accuracy</th><th class='l'>note</th></tr>")
        parts.extend(rows)
        parts.append("</table>")
    return "\n".join(parts)
