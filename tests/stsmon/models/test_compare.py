"""`stsmon model compare`: the paired bootstrap (checked against scikit-learn's metrics and on cases with
a known answer) and the command on two packaged models, each scored by its own inference program."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from registry_fixture import register
from sklearn import metrics as skm
from test_model_commands import Setup, model

from stsmon.models import compare as cmp
from stsmon.state import StateDir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "endpoint"))
from endpoint_fixtures import build_toy_model  # noqa: E402


def _predictions(labels, probabilities):
    return [{"label": int(label), "probability": float(p)} for label, p in zip(labels, probabilities)]


def test_point_metrics_are_scikit_learns():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1)
    pred = (p > 0.5).astype(int)
    table = cmp.metric_table("BinaryClassification", y, _predictions(pred, p), np.arange(400)[None, :])
    assert table["accuracy"][0] == pytest.approx(skm.accuracy_score(y, pred))
    assert table["precision"][0] == pytest.approx(skm.precision_score(y, pred))
    assert table["recall"][0] == pytest.approx(skm.recall_score(y, pred))
    assert table["f1"][0] == pytest.approx(skm.f1_score(y, pred))
    assert table["auc"][0] == pytest.approx(skm.roc_auc_score(y, p))
    score = y + rng.normal(0, 0.5, 400)
    reg = cmp.metric_table("Regression", y.astype(float), [{"score": s} for s in score], np.arange(400)[None, :])
    assert reg["mae"][0] == pytest.approx(skm.mean_absolute_error(y, score))
    assert reg["rmse"][0] == pytest.approx(np.sqrt(skm.mean_squared_error(y, score)))
    assert reg["r2"][0] == pytest.approx(skm.r2_score(y, score))


def test_identical_models_differ_by_exactly_nothing():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    same = _predictions(p > 0.5, p)
    rows = cmp.paired_bootstrap("BinaryClassification", y, same, same, resamples=200)
    assert all(m.difference_interval == (0.0, 0.0) and m.outcome == "unclear" for m in rows)


def test_a_model_right_where_the_other_is_wrong_is_better_and_the_interval_is_paired():
    """B corrects 3 % of the pairs A gets wrong and breaks none: the unpaired intervals of A and B
    overlap, the paired difference's interval excludes 0 (that is what pairing buys)."""
    rng = np.random.default_rng(3)
    n = 600
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.75, y, 1 - y)
    b = a.copy()
    fix = np.flatnonzero(a != y)[: n * 3 // 100]
    b[fix] = y[fix]
    pa, pb = _predictions(a, a * 0.8 + 0.1), _predictions(b, b * 0.8 + 0.1)
    rows = {m.name: m for m in cmp.paired_bootstrap("BinaryClassification", y, pa, pb, resamples=500)}
    acc = rows["accuracy"]
    assert acc.difference == pytest.approx(len(fix) / n)
    assert acc.outcome == "better" and acc.difference_interval[0] > 0
    assert acc.a_interval[1] > acc.b_interval[0]  # the unpaired intervals overlap
    worse = {m.name: m for m in cmp.paired_bootstrap("BinaryClassification", y, pb, pa, resamples=500)}
    assert worse["accuracy"].outcome == "worse"


def test_lower_is_better_metrics_turn_the_verdict_round():
    rng = np.random.default_rng(4)
    y = rng.normal(2.5, 1, 500)
    good = [{"score": s} for s in y + rng.normal(0, 0.2, 500)]
    bad = [{"score": s} for s in y + rng.normal(0, 1.0, 500)]
    rows = {m.name: m for m in cmp.paired_bootstrap("Regression", y, bad, good, resamples=300)}
    assert rows["rmse"].difference < 0 and rows["rmse"].outcome == "better"
    assert rows["r2"].outcome == "better"


# -- the command, on two packaged toy models ---------------------------------------------------


@pytest.fixture(scope="module")
def toy_archive(tmp_path_factory):
    folder = build_toy_model(tmp_path_factory.mktemp("toy") / "model")
    archive = folder.parent / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)))
    return archive


ROWS = [("1", "the cat sat on the mat", "a cat sat on the mat"), ("0", "the sky is blue", "bananas are yellow"),
        ("1", "stocks fell sharply", "shares fell sharply"), ("0", "I like tea", "the train was late"),
        ("1", "he went home early", "he left home early"), ("0", "profits rose", "the dog barked")]


@pytest.fixture
def two_versions(tmp_path, clock, toy_archive):
    folder = StateDir(tmp_path / "state")
    arns = register(folder, clock, [("Approved", 0.78), ("PendingManualApproval", 0.80)])
    for n in (1, 2):
        target = folder.s3_path(f"s3://bkt/sts/run{n}/model.tar.gz")
        target.write_bytes(toy_archive.read_bytes())
    data = tmp_path / "pairs.csv"
    data.write_text("".join(f'{label},"{a}","{b}"\n' for label, a, b in ROWS * 10))
    return Setup(folder, arns), data


def test_compare_scores_both_versions_with_their_own_programs(two_versions):
    state, data = two_versions
    code, out, err = model(state, "compare", "1", "v2", "--data", str(data), "--resamples", "200", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["a"]["version"], result["b"]["version"], result["pairs"]) == (1, 2, 60)
    assert [m["name"] for m in result["metrics"]] == ["accuracy", "precision", "recall", "f1", "auc"]
    assert result["agreement"] == 1.0 and result["verdict_metric"] == "accuracy"
    accuracy = result["metrics"][0]
    assert accuracy["a"] == accuracy["b"] and 0.5 <= accuracy["a"] <= 1.0 and accuracy["difference_ci95"] == [0.0, 0.0]
    assert result["verdict"].startswith("No clear difference between v2 and v1 on accuracy on the test split: +0.0000")
    assert result["windows"] is None and result["windows_note"] == "no monitoring deployed"


def test_the_comparison_reads_as_a_table_and_a_verdict(tmp_path, clock):
    from stsmon.models.versions import Version

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    a = np.where(rng.random(400) < 0.7, y, 1 - y)
    b = np.where(rng.random(400) < 0.9, y, 1 - y)
    rows = cmp.paired_bootstrap("BinaryClassification", y, _predictions(a, a * 0.6 + 0.2), _predictions(b, b * 0.6 + 0.2),
                                resamples=200)
    va = Version("arn:a/1", 1, "Approved", clock.now())
    vb = Version("arn:a/2", 2, "PendingManualApproval", clock.now())
    test = cmp.Section("test.csv", 400, rows, 0.7)
    result = cmp.Comparison(va, vb, "BinaryClassification", test, "accuracy", 200, 0,
                            window_note="no monitoring window has labels yet")
    lines = cmp.format_comparison(result)
    assert lines[0] == "v1 (Approved) vs v2 (PendingManualApproval) on 400 labelled pairs: test.csv"
    assert lines[2].split()[0] == "accuracy" and lines[2].endswith("v2 better")
    assert "Monitoring windows: no monitoring window has labels yet." in lines
    assert lines[-1].startswith("Verdict: v2 is better than v1 on accuracy on the test split: +0.")
    assert "paired bootstrap on 400 pairs" in lines[-1]
    live = cmp.Comparison(va, vb, "BinaryClassification", test, "accuracy", 200, 0,
                          windows=cmp.Section("1 labelled monitoring window(s): A/B", 400, rows[::-1][::-1], 0.7))
    lines = cmp.format_comparison(live)
    assert "On 400 labelled pairs of 1 labelled monitoring window(s): A/B" in lines
    assert lines[-1].strip().startswith("v2 is better than v1 on accuracy on the monitoring windows")


def test_a_captured_request_gives_its_pair_as_the_endpoint_read_it():
    import base64

    from stsmon.models.windows import _pair
    from stsmon.monitoring.records import CapturedInference

    def rec(data, kind, encoding="CSV"):
        return CapturedInference("k", "k", "e", "", "", "", data, kind, encoding)

    assert _pair(rec('"He said ""no"".",She refused.\n', "text/csv")) == ('He said "no".', "She refused.")
    encoded = base64.b64encode(b"a b,c d\n").decode()
    assert _pair(rec(encoded, "text/csv", "BASE64")) == ("a b", "c d")
    assert _pair(rec('{"instances": [{"sentence1": "x", "sentence2": "y"}]}', "application/json", "JSON")) == ("x", "y")
    assert _pair(rec("a,b\nc,d\n", "text/csv")) is None  # two pairs in one request: one label cannot score both
    assert _pair(rec("x", "application/x-npy")) is None


def test_compare_refuses_unlabelled_data_and_a_version_with_itself(two_versions, tmp_path):
    state, _ = two_versions
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text(',"a b","a c"\n,"x","y"\n')
    code, _, err = model(state, "compare", "1", "2", "--data", str(unlabelled))
    assert code == 2 and "has 0 labelled pairs: comparing needs labels" in err
    code, _, err = model(state, "compare", "2", "v2")
    assert code == 2 and err.strip() == "Error: compare two different versions (both are v2)"


def test_a_model_that_cannot_load_is_one_clear_line(two_versions):
    state, data = two_versions
    state.dir.s3_path("s3://bkt/sts/run2/model.tar.gz").write_bytes(b"not a tar archive")
    code, _, err = model(state, "compare", "1", "2", "--data", str(data))
    assert code == 1 and err.startswith("Error: cannot extract model archive")
    assert "Traceback" not in err


def test_a_window_counts_each_id_once_as_the_monitor_does():
    """The same inference id captured twice in a window (a client retrying, a rerun) is one labelled pair:
    the first capture counts, as in the monitor's match (processing_scripts/monitor_records.py), so compare
    scores what the monitor scored. Before, every repeat was another pair (the demo's rerun doubled 870 to 1740)."""
    from stsmon.models.windows import WindowPairs, _join
    from stsmon.monitoring.records import CapturedInference

    def rec(key, data):
        return CapturedInference(key, key, "e", "", "", "", data, "text/csv", "CSV")

    found = WindowPairs()
    _join([rec("a", "first a,x\n"), rec("b", "b1,b2\n"), rec("a", "second a,x\n"), rec("c", "c1,c2\n"),
           rec("d", "d1,d2\nd3,d4\n")], {"a": 1.0, "b": 0.0, "d": 1.0}, found)
    assert found.pairs == [("first a", "x"), ("b1", "b2")]
    assert found.labels == [1.0, 0.0]
    assert (found.duplicates, found.skipped) == (1, 1)  # "c" has no label: neither pair nor skipped
