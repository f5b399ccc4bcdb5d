"""Compare two versions on the same labelled pairs: metrics side by side, paired-bootstrap intervals, a verdict.

Both versions score the same pairs (by default the test split of the
training execution that registered the newer one — its
``MetadataProperties.GeneratedBy`` — else the latest training run's), each
with its own inference program in its own process (:mod:`.score`), the model
data read through the target's S3 client: the same code for both targets.

The intervals are a paired bootstrap: one set of resampled pair indices
(seeded) is applied to both versions' predictions, so each resample gives a
metric for A, for B and their difference on the *same* pairs; the 2.5th and
97.5th percentiles of those are the 95 % intervals. Pairing is what makes a
small difference between two models on one test split detectable at all
(their errors are correlated). The verdict is on the configured quality
metric (``QUALITY_METRIC``): B is better (or worse) when the interval of the
difference excludes 0 in that direction; otherwise there is no clear
difference on this data.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from stscontracts import metrics as metric_registry
from stscontracts.names import BINARY_CLASSIFICATION, PROBLEM_TYPES, REGRESSION

from ..errors import StsmonError, UsageError
from . import versions as v

#: Bootstrap resamples and the seed of their indices (same seed: same intervals on rerun).
RESAMPLES = 1000
SEED = 0
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")


# -- metrics, vectorized over resamples ----------------------------------------------------------


def _binary(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, precision, recall, f1 for each row of ``idx`` (resampled indices)."""
    yy, pp = y[idx], pred[idx]
    tp = ((pp == 1) & (yy == 1)).sum(axis=1).astype(float)
    fp = ((pp == 1) & (yy == 0)).sum(axis=1).astype(float)
    fn = ((pp == 0) & (yy == 1)).sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"accuracy": (yy == pp).mean(axis=1), "precision": precision, "recall": recall, "f1": f1}


def _auc(y: np.ndarray, score: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """ROC AUC per resample (Mann-Whitney, ties averaged; NaN for a resample with one class)."""
    from scipy.stats import rankdata

    out = np.empty(len(idx))
    for i, rows in enumerate(idx):
        yy, ss = y[rows], score[rows]
        n1 = int(yy.sum())
        n0 = len(yy) - n1
        if n1 == 0 or n0 == 0:
            out[i] = np.nan
            continue
        ranks = rankdata(ss)
        out[i] = (ranks[yy == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return out


def _regression(y: np.ndarray, score: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    yy, ss = y[idx], score[idx]
    err = ss - yy
    mse = (err ** 2).mean(axis=1)
    total = ((yy - yy.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - (err ** 2).sum(axis=1) / total, np.nan)
    return {"mae": np.abs(err).mean(axis=1), "rmse": np.sqrt(mse), "r2": r2}


def metric_table(problem_type: str, y: np.ndarray, predictions: list[dict[str, Any]], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Every compared metric of one version for each row of ``idx``."""
    if problem_type == REGRESSION:
        return _regression(y.astype(float), np.array([float(p["score"]) for p in predictions]), idx)
    labels = np.array([int(p["label"]) for p in predictions])
    out = _binary(y.astype(int), labels, idx)
    out["auc"] = _auc(y.astype(int), np.array([float(p["probability"]) for p in predictions]), idx)
    return out


@dataclass(frozen=True)
class MetricComparison:
    name: str
    higher_is_better: bool
    a: float
    b: float
    a_interval: tuple[float, float]
    b_interval: tuple[float, float]
    difference_interval: tuple[float, float]  # of B - A

    @property
    def difference(self) -> float:
        return self.b - self.a

    @property
    def outcome(self) -> str:
        """``better``, ``worse`` (B against A) or ``unclear``: the interval of the difference against 0."""
        lo, hi = self.difference_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return "unclear"
        if lo > 0:
            return "better" if self.higher_is_better else "worse"
        if hi < 0:
            return "worse" if self.higher_is_better else "better"
        return "unclear"


@dataclass(frozen=True)
class Section:
    """The comparison on one set of pairs (the test split, or the monitoring windows)."""

    data: str
    pairs: int
    metrics: list[MetricComparison]
    agreement: float  # share of pairs with the same predicted label (classification) or |score diff| < 0.5

    def row(self, name: str) -> MetricComparison:
        return next(m for m in self.metrics if m.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "pairs": self.pairs, "agreement": self.agreement,
                "metrics": [{"name": m.name, "higher_is_better": m.higher_is_better, "a": m.a, "b": m.b,
                             "difference": m.difference, "a_ci95": list(m.a_interval), "b_ci95": list(m.b_interval),
                             "difference_ci95": list(m.difference_interval), "outcome": m.outcome}
                            for m in self.metrics]}


def _verdict(section: Section, metric: str, a: str, b: str, where: str) -> str:
    row = section.row(metric)
    lo, hi = row.difference_interval
    change = f"{row.difference:+.4f} (95 % CI {lo:+.4f} to {hi:+.4f})"
    if row.outcome == "better":
        return f"{b} is better than {a} on {row.name} {where}: {change}, paired bootstrap on {section.pairs} pairs."
    if row.outcome == "worse":
        return f"{b} is worse than {a} on {row.name} {where}: {change}, paired bootstrap on {section.pairs} pairs."
    return (f"No clear difference between {b} and {a} on {row.name} {where}: {change} includes 0 "
            f"({section.pairs} pairs; more data would tell them apart, if they differ).")


@dataclass(frozen=True)
class Comparison:
    a: v.Version
    b: v.Version
    problem_type: str
    test: Section
    verdict_metric: str
    resamples: int
    seed: int
    windows: Section | None = None
    window_note: str = ""

    @property
    def pairs(self) -> int:
        return self.test.pairs

    @property
    def verdict(self) -> str:
        return _verdict(self.test, self.verdict_metric, self.a.label, self.b.label, "on the test split")

    @property
    def windows_verdict(self) -> str:
        if self.windows is None:
            return ""
        return _verdict(self.windows, self.verdict_metric, self.a.label, self.b.label, "on the monitoring windows")

    def as_dict(self) -> dict[str, Any]:
        return {"a": {"version": self.a.number, "arn": self.a.arn, "status": self.a.status},
                "b": {"version": self.b.number, "arn": self.b.arn, "status": self.b.status},
                "problem_type": self.problem_type, "resamples": self.resamples, "seed": self.seed,
                **self.test.as_dict(), "verdict_metric": self.verdict_metric, "verdict": self.verdict,
                "windows": {**self.windows.as_dict(), "verdict": self.windows_verdict} if self.windows else None,
                "windows_note": self.window_note}


def paired_bootstrap(problem_type: str, y: np.ndarray, pred_a: list[dict[str, Any]], pred_b: list[dict[str, Any]],
                     *, resamples: int = RESAMPLES, seed: int = SEED) -> list[MetricComparison]:
    """Each metric of A and B on all pairs, with paired-bootstrap 95 % intervals (see the module docstring)."""
    n = len(y)
    every = np.arange(n)[None, :]
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    point_a, point_b = metric_table(problem_type, y, pred_a, every), metric_table(problem_type, y, pred_b, every)
    boot_a, boot_b = metric_table(problem_type, y, pred_a, idx), metric_table(problem_type, y, pred_b, idx)

    def interval(values: np.ndarray) -> tuple[float, float]:
        finite = values[np.isfinite(values)]
        if not len(finite):
            return (float("nan"), float("nan"))
        lo, hi = np.percentile(finite, [2.5, 97.5])
        return (float(lo), float(hi))

    out = []
    for name in point_a:
        try:
            higher = metric_registry.higher_is_better(name, problem_type)
        except KeyError:
            higher = True
        out.append(MetricComparison(name, higher, float(point_a[name][0]), float(point_b[name][0]),
                                    interval(boot_a[name]), interval(boot_b[name]),
                                    interval(boot_b[name] - boot_a[name])))
    return out


# -- the models and the data ----------------------------------------------------------------------


def _model_dir(clients: Any, version: v.Version) -> tuple[Path, dict[str, str]]:
    """The version's model folder (model data read through the S3 client, extracted once) and its
    container environment."""
    from ..endpoint.model import prepare_model_dir

    container = version.package["InferenceSpecification"]["Containers"][0]
    uri = container.get("ModelDataUrl", "")
    if not uri.startswith("s3://"):
        raise StsmonError(f"{version.label} has no model data in S3 (ModelDataUrl {uri!r})")
    parsed = urlparse(uri)
    cache = clients.state.root / "models" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    archive = cache / "model.tar.gz"
    from botocore.exceptions import ClientError

    from ..clients.errors import error_message

    try:  # read every time (a few MB); the extraction is kept by content hash
        body = clients.s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    except ClientError as exc:
        raise StsmonError(f"cannot read {version.label}'s model data {uri}: {error_message(exc)}") from None
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, delete=False) as handle:
        handle.write(body)
    Path(handle.name).replace(archive)
    return prepare_model_dir(archive, cache / "extracted"), dict(container.get("Environment") or {})


def score(clients: Any, versions: list[v.Version], pairs: list[tuple[str, str]]) -> list[list[dict[str, Any]]]:
    """Each version's predictions for ``pairs``: its inference program in a process of its own, the
    processes side by side (every model is fetched and extracted first, so a bad one fails before any runs)."""
    prepared = [_model_dir(clients, version) for version in versions]
    procs = []
    for model_dir, env in prepared:
        proc = subprocess.Popen([sys.executable, "-m", "stsmon.models.score", str(model_dir)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
    request = [json.dumps({"env": env, "pairs": [list(p) for p in pairs]}) for _, env in prepared]
    with ThreadPoolExecutor(max_workers=len(procs)) as pool:
        outputs = list(pool.map(lambda item: item[0].communicate(item[1]), zip(procs, request)))
    results = []
    for version, proc, (stdout, stderr) in zip(versions, procs, outputs):
        if proc.returncode != 0:
            lines = stderr.strip().splitlines()
            raise StsmonError(f"scoring with {version.label} failed: "
                              f"{lines[-1] if lines else f'exit code {proc.returncode}'}")
        predictions = json.loads(stdout)["predictions"]
        if len(predictions) != len(pairs):
            raise StsmonError(f"{version.label} answered {len(predictions)} predictions for {len(pairs)} pairs")
        results.append(predictions)
    return results


def test_data(clients: Any, a: v.Version, b: v.Version, data: Path | None) -> tuple[Path, str]:
    """``(file, where it came from)``: ``data``, else the test split of the run that registered B (or A),
    else the latest training run's."""
    from ..test_split import execution_test_split, latest_test_split

    if data is not None:
        return data, str(data)
    for version in (b, a):
        execution = (version.package.get("MetadataProperties") or {}).get("GeneratedBy", "")
        if ":pipeline/" in execution and "/execution/" in execution:
            path = execution_test_split(clients, execution)
            if path is not None:
                return path, f"the test split of the run that registered {version.label}"
    return latest_test_split(clients, clients.config.pipeline_name), "the test split of the latest training run"


def _agreement(problem_type: str, pred_a: list[dict[str, Any]], pred_b: list[dict[str, Any]]) -> float:
    if problem_type == REGRESSION:
        return float(np.mean([abs(pa["score"] - pb["score"]) < 0.5 for pa, pb in zip(pred_a, pred_b)]))
    return float(np.mean([pa["label"] == pb["label"] for pa, pb in zip(pred_a, pred_b)]))


def compare(clients: Any, ref_a: str, ref_b: str, *, data: Path | None = None, windows: int = 3,
            resamples: int = RESAMPLES, seed: int = SEED) -> Comparison:
    """Compare versions ``ref_a`` and ``ref_b`` (see the module docstring); also on the last ``windows``
    labelled monitoring windows when there are some (:mod:`.windows`)."""
    from ..test_split import read_pairs
    from .windows import labelled_windows

    found = v.list_versions(clients, with_metrics=False)
    a, b = v.find(found, ref_a), v.find(found, ref_b)
    if a.arn == b.arn:
        raise UsageError(f"compare two different versions (both are {a.label})")
    problem_types = {x.problem_type for x in (a, b) if x.problem_type}
    if len(problem_types) > 1:
        raise UsageError(f"{a.label} and {b.label} solve different problems ({', '.join(sorted(problem_types))})")
    problem_type = problem_types.pop() if problem_types else clients.config.problem_type
    if problem_type not in PROBLEM_TYPES:
        raise UsageError(f"{b.label}'s problem type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}")
    path, where = test_data(clients, a, b, data)
    labelled = [p for p in read_pairs(path) if p.label is not None]
    if len(labelled) < 2:
        raise UsageError(f"{where} ({path}) has {len(labelled)} labelled pairs: comparing needs labels")
    y = np.array([p.label for p in labelled], dtype=float)
    if problem_type == BINARY_CLASSIFICATION and not set(np.unique(y)) <= {0.0, 1.0}:
        raise UsageError(f"{path}: labels must be 0 or 1 for {problem_type}")
    live = labelled_windows(clients, windows)
    n = len(labelled)
    pairs = [(p.sentence1, p.sentence2) for p in labelled] + live.pairs
    pred_a, pred_b = score(clients, [a, b], pairs)
    names = list(REGRESSION_METRICS if problem_type == REGRESSION else CLASSIFICATION_METRICS)
    wanted = clients.config.quality_metric
    verdict_metric = wanted if wanted in names else names[0]
    test = Section(f"{where} ({path})", n, paired_bootstrap(problem_type, y, pred_a[:n], pred_b[:n],
                                                            resamples=resamples, seed=seed),
                   _agreement(problem_type, pred_a[:n], pred_b[:n]))
    window_section, note = None, live.note
    if len(live.pairs) >= 2:
        spans = ", ".join(f"{w['start']}/{w['end']}" for w in live.windows)
        y_live = np.array(live.labels, dtype=float)
        window_section = Section(f"{len(live.windows)} labelled monitoring window(s): {spans}", len(live.pairs),
                                 paired_bootstrap(problem_type, y_live, pred_a[n:], pred_b[n:],
                                                  resamples=resamples, seed=seed),
                                 _agreement(problem_type, pred_a[n:], pred_b[n:]))
        left_out = [f"{live.skipped} labelled request(s) left out (not one readable pair)"] if live.skipped else []
        if live.duplicates:
            left_out.append(f"{live.duplicates} repeated capture(s) of an id counted once, as the monitor does")
        if left_out:
            note = "; ".join(left_out)
    elif windows > 0 and not note:
        note = "the labelled monitoring windows have fewer than 2 readable pairs"
    return Comparison(a, b, problem_type, test, verdict_metric, resamples, seed, window_section, note)


def _table(section: Section, a: str, b: str) -> list[str]:
    def cell(value: float, interval: tuple[float, float], signed: bool = False) -> str:
        fmt = "{:+.3f}" if signed else "{:.3f}"
        return f"{fmt.format(value)} [{fmt.format(interval[0])}, {fmt.format(interval[1])}]"

    lines = [f"  {'metric':<10} {a:>22} {b:>22} {b + ' - ' + a:>28}"]
    for m in section.metrics:
        mark = {"better": f"  {b} better", "worse": f"  {b} worse", "unclear": ""}[m.outcome]
        lines.append(f"  {m.name:<10} {cell(m.a, m.a_interval):>22} {cell(m.b, m.b_interval):>22} "
                     f"{cell(m.difference, m.difference_interval, True):>28}{mark}")
    lines.append(f"  predictions agree on {section.agreement:.1%} of the pairs")
    return lines


def format_comparison(result: Comparison) -> list[str]:
    a, b = result.a.label, result.b.label
    lines = [f"{a} ({result.a.status}) vs {b} ({result.b.status}) on {result.test.pairs} labelled pairs: "
             f"{result.test.data}", *_table(result.test, a, b)]
    if result.windows is not None:
        lines += [f"On {result.windows.pairs} labelled pairs of {result.windows.data}", *_table(result.windows, a, b)]
    elif result.window_note:
        lines.append(f"Monitoring windows: {result.window_note}.")
    lines.append(f"95 % intervals from a paired bootstrap ({result.resamples} resamples, seed {result.seed}).")
    lines.append(f"Verdict: {result.verdict}")
    if result.windows is not None:
        lines.append(f"         {result.windows_verdict}")
    return lines
