#!/usr/bin/env python3
"""Benchmark: model quality and speed on the standard MSRP split (train 4076 / test 1725).

1. Model selection by 5-fold stratified cross-validation on the *training*
   file only: each candidate configuration of ``processing_scripts/stsmodel.py``
   (the featurizer is fitted inside every fold) is scored by accuracy, ROC AUC
   and log loss; the best mean CV accuracy wins.
2. The chosen configuration (and its Platt-calibrated variant when the chosen
   one is uncalibrated) and the original approach (count-vector distances + row min-max + logistic
   regression, re-implemented below) are fitted on ``msr_paraphrase_train.txt``
   and scored once on ``msr_paraphrase_test.txt``: accuracy, F1, ROC AUC with
   bootstrap 95 % intervals, fit time, prediction time per 1000 pairs (one
   batch), single-pair latency through ``inference.py`` (``transform_fn``:
   parse_request -> predict -> format_response, median and 95th percentile), model size
   (joblib, compress=3).
3. Paired bootstrap of the accuracy difference between ours and the original
   approach on the same resampled test pairs.

Prints markdown tables (and the machine's load average, since it may be shared).

    .venv/bin/python bench/model_quality.py [--msrp DIR] [--folds 5] [--skip-cv] [--bootstrap 2000]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import string
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "processing_scripts"), str(REPO)]

import inference  # noqa: E402
import joblib  # noqa: E402
import stsmodel  # noqa: E402
from featurizer import FEATURE_NAMES, PairFeaturizer  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin, clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from stscontracts import names  # noqa: E402

BINARY = names.BINARY_CLASSIFICATION

#: Candidate configurations compared by cross-validation (name -> hyperparameter overrides).
CANDIDATES: dict[str, dict] = {
    "logistic": {"estimator": "logistic", "calibration": "none"},
    "boosting": {"estimator": "boosting", "calibration": "none"},
    "mlp": {"estimator": "mlp", "calibration": "none"},
    "ensemble": {"estimator": "ensemble", "calibration": "none"},
    "ensemble, Platt-calibrated": {"estimator": "ensemble", "calibration": "sigmoid"},
    "ensemble, no label-aware features": {"estimator": "ensemble", "calibration": "none",
                                          "supervised_features": False},
}


def read_msrp(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Pairs and 0/1 labels of an MSRP file, read with quoting off (strings contain raw quotes)."""
    lines = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").split("\n")[1:]
    rows = [line.split("\t") for line in lines if line.strip()]
    return [(r[3], r[4]) for r in rows], np.array([int(r[0]) for r in rows])


# -- the original approach ------------------------------------------------------------------

ORIGINAL_METRICS = (
    "euclidean", "l2", "l1", "manhattan", "cityblock", "braycurtis", "canberra", "chebyshev",
    "correlation", "cosine", "dice", "hamming", "jaccard", "kulsinski", "matching", "minkowski",
    "rogerstanimoto", "russellrao", "seuclidean", "sokalmichener", "sokalsneath", "sqeuclidean", "yule",
)


class OriginalDistances(TransformerMixin, BaseEstimator):
    """The original feature set: 23 distances between the two sentences' count vectors.

    Punctuation removed, whitespace tokens (case kept), count vectors over the
    pair's own vocabulary, one distance per metric (a metric this SciPy lacks
    or that fails gives NaN), each row min-max scaled to [0, 1], NaNs replaced
    by the mean learned in ``fit``.
    """

    def fit(self, X, y=None):
        raw = self._raw(X)
        self.fill_ = float(np.nanmean(raw))
        return self

    def transform(self, X):
        raw = self._raw(X)
        return np.where(np.isnan(raw), self.fill_, raw)

    def fit_transform(self, X, y=None, **fit_params):
        raw = self._raw(X)
        self.fill_ = float(np.nanmean(raw))
        return np.where(np.isnan(raw), self.fill_, raw)

    @staticmethod
    def _raw(X) -> np.ndarray:
        from sklearn.metrics import pairwise_distances

        table = str.maketrans("", "", string.punctuation)
        out = np.empty((len(X), len(ORIGINAL_METRICS)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, (s1, s2) in enumerate(X):
                w1, w2 = s1.translate(table).split(), s2.translate(table).split()
                vocab = sorted(set(w1) | set(w2))
                a = np.array([[w1.count(w) for w in vocab]], dtype=np.float64)
                b = np.array([[w2.count(w) for w in vocab]], dtype=np.float64)
                for j, metric in enumerate(ORIGINAL_METRICS):
                    try:
                        out[i, j] = pairwise_distances(a, b, metric=metric)[0, 0]
                    except Exception:  # noqa: BLE001 - a metric missing from this SciPy: NaN, as the original did
                        out[i, j] = np.nan
                row = out[i]
                finite = np.isfinite(row)
                row[~finite] = np.nan
                if finite.any():
                    lo, hi = row[finite].min(), row[finite].max()
                    out[i] = (row - lo) / (hi - lo) if hi > lo else np.where(finite, 0.0, np.nan)
        return out


def original_pipeline() -> Pipeline:
    return Pipeline([("features", OriginalDistances()), ("model", LogisticRegression(max_iter=200))])


# -- measurements ------------------------------------------------------------------------------------


def bootstrap_ci(y, pred, prob, n: int, seed: int = 0) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    stats = {"accuracy": [], "f1": [], "auc": []}
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        stats["accuracy"].append(accuracy_score(y[idx], pred[idx]))
        stats["f1"].append(f1_score(y[idx], pred[idx]))
        stats["auc"].append(roc_auc_score(y[idx], prob[idx]))
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in stats.items()}


def calibration_error(y, prob, bins: int = 10) -> float:
    """Expected calibration error: mean |observed rate - mean probability| over 10 equal-width bins."""
    y, prob = np.asarray(y), np.asarray(prob)
    idx = np.minimum((prob * bins).astype(int), bins - 1)
    return float(sum(np.sum(idx == b) * abs(y[idx == b].mean() - prob[idx == b].mean())
                     for b in range(bins) if np.any(idx == b)) / len(y))


def latency_ms(pipeline, pairs, n: int = 300) -> tuple[float, float]:
    """Median and 95th percentile of one pair through transform_fn (parse, predict, format)."""
    model = inference.Model(pipeline, {"problem_type": BINARY})
    bodies = [f'"{a.replace(chr(34), 2 * chr(34))}","{b.replace(chr(34), 2 * chr(34))}"\n'.encode()
              for a, b in pairs[:n]]
    for body in bodies[:20]:  # warm-up
        inference.transform_fn(model, body, "text/csv", "text/csv")
    times = []
    for body in bodies:
        start = time.perf_counter()
        inference.transform_fn(model, body, "text/csv", "text/csv")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


def measure(name: str, pipeline, train, test, n_boot: int) -> dict:
    (Xtr, ytr), (Xte, yte) = train, test
    start = time.perf_counter()
    pipeline.fit(Xtr, ytr)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    prob = pipeline.predict_proba(Xte)[:, 1]
    batch_s = time.perf_counter() - start
    pred = (prob >= 0.5).astype(int)
    buf = io.BytesIO()
    joblib.dump(pipeline, buf, compress=3)
    median, p95 = latency_ms(pipeline, Xte)
    return {
        "name": name, "pred": pred, "prob": prob,
        "accuracy": accuracy_score(yte, pred), "f1": f1_score(yte, pred), "auc": roc_auc_score(yte, prob),
        "ece": calibration_error(yte, prob), "loss": log_loss(yte, prob),
        "ci": bootstrap_ci(yte, pred, prob, n_boot), "fit_s": fit_s, "per_1000_s": batch_s / len(Xte) * 1000,
        "latency": (median, p95), "size_kb": len(buf.getvalue()) / 1024,
    }


def cross_validate(train, folds: int, seed: int) -> list[dict]:
    """Every candidate's CV scores; the featurizer is fitted inside each fold (cached across candidates)."""
    X, y = train
    X = np.array(X, dtype=object)
    results = {name: {"acc": [], "auc": [], "loss": [], "ece": [], "fit": []} for name in CANDIDATES}
    n_lex = len(FEATURE_NAMES)
    for k, (tr, va) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)):
        featurizer = PairFeaturizer(random_state=0)
        Ftr = featurizer.fit_transform(list(map(tuple, X[tr])), y[tr])
        Fva = featurizer.transform(list(map(tuple, X[va])))
        for name, overrides in CANDIDATES.items():
            hp = stsmodel.Hyperparameters(**overrides)
            cols = slice(None) if hp.supervised_features else slice(0, n_lex)
            est = clone(stsmodel.build_estimator(BINARY, hp))
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(Ftr[:, cols], y[tr])
            results[name]["fit"].append(time.perf_counter() - start)
            prob = est.predict_proba(Fva[:, cols])[:, 1]
            results[name]["acc"].append(accuracy_score(y[va], prob >= 0.5))
            results[name]["auc"].append(roc_auc_score(y[va], prob))
            results[name]["loss"].append(log_loss(y[va], prob))
            results[name]["ece"].append(calibration_error(y[va], prob))
        print(f"  fold {k + 1}/{folds} done", file=sys.stderr, flush=True)
    return [{"name": name, **{m: (float(np.mean(v)), float(np.std(v))) for m, v in r.items()}}
            for name, r in results.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_msrp = os.environ.get("STSMON_MSRP_DIR") or str(REPO.parent / "shared" / "data" / "msrp")
    parser.add_argument("--msrp", type=Path, default=Path(default_msrp),
                        help="folder with msr_paraphrase_{train,test}.txt (default: $STSMON_MSRP_DIR or "
                             "../shared/data/msrp)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples for the 95 %% intervals")
    parser.add_argument("--skip-cv", action="store_true", help="skip model selection; use train.py's default")
    parser.add_argument("--seeds", type=int, default=3,
                        help="also refit ours with random_state 1..N-1 to show the seed spread (default 3)")
    args = parser.parse_args(argv)
    # As train.py and inference.py do: one BLAS thread (small matrices; see steputil.single_threaded_blas).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")

    train = read_msrp(args.msrp / "msr_paraphrase_train.txt")
    test = read_msrp(args.msrp / "msr_paraphrase_test.txt")
    print(f"# Model quality on MSRP (train {len(train[0])} / test {len(test[0])})\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs (shared machine), "
          f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())}\n")

    default = stsmodel.Hyperparameters()
    chosen_name = next((n for n, o in CANDIDATES.items()
                        if stsmodel.Hyperparameters(**o) == default), "default")
    if not args.skip_cv:
        cv = cross_validate(train, args.folds, args.seed)
        best = max(cv, key=lambda r: r["acc"][0])
        chosen_name = best["name"]
        print(f"## Model selection: {args.folds}-fold stratified CV on the training file only\n")
        print("| candidate | CV accuracy | CV ROC AUC | CV log loss | CV calibration error | fit time per fold (s) |")
        print("|---|---|---|---|---|---|")
        for r in sorted(cv, key=lambda r: -r["acc"][0]):
            mark = " **(chosen)**" if r["name"] == chosen_name else ""
            print(f"| {r['name']}{mark} | {r['acc'][0]:.4f} ± {r['acc'][1]:.4f} | {r['auc'][0]:.4f} ± "
                  f"{r['auc'][1]:.4f} | {r['loss'][0]:.4f} | {r['ece'][0]:.4f} | {r['fit'][0]:.1f} |")
        print()
        chosen_hp = stsmodel.Hyperparameters(**CANDIDATES[chosen_name])
        print(f"train.py's default is {'the chosen configuration' if chosen_hp == default else 'NOT the chosen one'}"
              f" (estimator={default.estimator}, calibration={default.calibration}, "
              f"label-aware features={default.supervised_features}).\n")

    models = [("ours: " + chosen_name, stsmodel.build_pipeline(BINARY, stsmodel.Hyperparameters(
        **CANDIDATES.get(chosen_name, {}))))]
    if CANDIDATES.get(chosen_name, {}).get("calibration", "none") == "none":
        calibrated = {**CANDIDATES.get(chosen_name, {}), "calibration": "sigmoid"}
        models.append(("ours, Platt-calibrated (calibration=sigmoid)",
                       stsmodel.build_pipeline(BINARY, stsmodel.Hyperparameters(**calibrated))))
    models.append(("original: count-vector distances + row min-max + LR", original_pipeline()))
    results = []
    for name, pipeline in models:
        print(f"  fitting {name}", file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(measure(name, pipeline, train, test, args.bootstrap))

    print("## Standard split: fit on msr_paraphrase_train.txt, score on msr_paraphrase_test.txt\n")
    print("| model | accuracy [95 % CI] | F1 [95 % CI] | ROC AUC [95 % CI] | log loss | calibration error "
          "| fit (s) | predict per 1000 pairs (s) | single pair via inference.py, median / p95 (ms) | model size (KiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ci = r["ci"]
        print(f"| {r['name']} | {r['accuracy']:.4f} [{ci['accuracy'][0]:.4f}, {ci['accuracy'][1]:.4f}] | "
              f"{r['f1']:.4f} [{ci['f1'][0]:.4f}, {ci['f1'][1]:.4f}] | {r['auc']:.4f} [{ci['auc'][0]:.4f}, "
              f"{ci['auc'][1]:.4f}] | {r['loss']:.4f} | {r['ece']:.4f} | {r['fit_s']:.1f} | {r['per_1000_s']:.2f} | {r['latency'][0]:.2f} / "
              f"{r['latency'][1]:.2f} | {r['size_kb']:.0f} |")
    print()

    ours, original = results[0], results[-1]
    if args.seeds > 1:
        print("## Seed spread of ours (random_state of folds, boosting, MLP, calibration)\n")
        print("| random_state | accuracy | F1 | ROC AUC |")
        print("|---|---|---|---|")
        accs = [ours["accuracy"]]
        print(f"| 0 | {ours['accuracy']:.4f} | {ours['f1']:.4f} | {ours['auc']:.4f} |")
        for seed in range(1, args.seeds):
            hp = stsmodel.Hyperparameters(**{**CANDIDATES.get(chosen_name, {}), "random_state": seed})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prob = stsmodel.build_pipeline(BINARY, hp).fit(*train).predict_proba(test[0])[:, 1]
            accs.append(accuracy_score(test[1], prob >= 0.5))
            print(f"| {seed} | {accs[-1]:.4f} | {f1_score(test[1], prob >= 0.5):.4f} | "
                  f"{roc_auc_score(test[1], prob):.4f} |")
        print(f"\nmean accuracy over {args.seeds} seeds: {np.mean(accs):.4f} (sd {np.std(accs, ddof=1):.4f})\n")

    y = test[1]
    rng = np.random.default_rng(args.seed)
    diffs = []
    for _ in range(args.bootstrap):
        idx = rng.integers(0, len(y), len(y))
        diffs.append(np.mean(ours["pred"][idx] == y[idx]) - np.mean(original["pred"][idx] == y[idx]))
    diffs = np.array(diffs)
    print("## Paired bootstrap (same resampled test pairs)\n")
    print("| comparison | accuracy difference | 95 % CI | share of resamples <= 0 |")
    print("|---|---|---|---|")
    print(f"| {ours['name']} - original | {ours['accuracy'] - original['accuracy']:+.4f} | "
          f"[{np.percentile(diffs, 2.5):+.4f}, {np.percentile(diffs, 97.5):+.4f}] | {np.mean(diffs <= 0):.4f} |")
    print(f"\nload average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
