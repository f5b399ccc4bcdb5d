"""pair_features: the watched features of a pair are the model's own columns, computed by the same code,
and the descriptors mean what their names say; the Model Monitor record preprocessor gives the same rows."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import featurizer
import pair_features
from pairs_fixture import binary_rows

PAIRS = [(r[3], r[4]) for r in binary_rows()]
NAMES = [name for name, _ in pair_features.PAIR_FEATURES]


def test_the_model_features_are_the_featurizers_columns():
    fitted = featurizer.PairFeaturizer(supervised=False).fit(PAIRS)
    columns = list(fitted.get_feature_names_out())
    expected = fitted.transform(PAIRS)
    shared = [n for n in NAMES if n in columns]
    assert shared == ["word1_f1", "word2_f1", "char3_jaccard", "bleu_mean", "rouge_l_f1", "word_edit_norm",
                      "len_ratio"]
    ours = np.array([pair_features.pair_row(a, b) for a, b in PAIRS])
    for name in shared:
        np.testing.assert_array_equal(ours[:, NAMES.index(name)], expected[:, columns.index(name)], err_msg=name)


def test_the_featurizer_uses_the_helpers_of_pair_features():
    """One implementation: the featurizer's lexical helpers are pair_features' objects."""
    for name in ("_lcs", "_edit_distance", "_bleu", "_overlap", "_set_overlap", "_char_ngrams", "_WORD"):
        assert getattr(featurizer, name) is getattr(pair_features, name)


def test_descriptors():
    vocabulary = {"the", "cat", "sat"}
    row = dict(zip(NAMES, pair_features.pair_row("The cat sat.", "The café   sat, DOG!", vocabulary)))
    assert (row["sentence1_tokens"], row["sentence2_tokens"]) == (3, 4)
    assert (row["sentence1_chars"], row["sentence2_chars"]) == (12, 20)
    assert row["sentence1_unseen_share"] == 0.0 and row["sentence2_unseen_share"] == 0.5  # café, dog
    assert row["non_ascii_share"] == pytest.approx(1 / 32)
    assert row["empty_pair"] == 0.0 and row["identical_pair"] == 0.0
    same = dict(zip(NAMES, pair_features.pair_row("A  b C", "a b c ")))
    assert same["identical_pair"] == 1.0 and same["word1_f1"] == 1.0 and same["sentence1_unseen_share"] == 0.0
    empty = dict(zip(NAMES, pair_features.pair_row("...", "Some words")))
    assert empty["empty_pair"] == 1.0 and empty["word1_f1"] == 0.0


def test_the_file_is_standard_library_only():
    """Model Monitor runs a record preprocessor as one file in its own container: nothing else to import."""
    tree = ast.parse(Path(pair_features.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__", "math", "re", "collections", "csv", "json"}, imported


def _record(data: str, content_type: str, answer: str, answer_type: str) -> SimpleNamespace:
    return SimpleNamespace(endpoint_input=SimpleNamespace(data=data, observedContentType=content_type),
                           endpoint_output=SimpleNamespace(data=answer, observedContentType=answer_type))


def test_preprocess_handler_rows():
    rows = pair_features.preprocess_handler(_record('"A cat, sat.",A dog sat.\nx,y\n', "text/csv",
                                                    "1,0.900000\n0,0.100000\n", "text/csv"))
    assert len(rows) == 2
    assert rows[0]["probability"] == 0.9 and rows[0]["predicted_label"] == 1 and rows[1]["predicted_label"] == 0
    assert [rows[0][n] for n in NAMES] == list(pair_features.pair_row("A cat, sat.", "A dog sat."))
    json_rows = pair_features.preprocess_handler(_record(
        '{"instances": [{"sentence1": "A cat, sat.", "sentence2": "A dog sat."}]}', "application/json",
        '{"predictions": [{"label": 1, "probability": 0.9}]}', "application/json"))
    assert json_rows == rows[:1]
    unreadable = pair_features.preprocess_handler(_record("{not json", "application/json", "", "text/csv"))
    assert unreadable == [dict.fromkeys(NAMES)]


def test_the_watched_features_are_the_contracts():
    """The stacks (alarms, dashboard) name the features from stscontracts; the preprocessor file keeps its own list."""
    from stscontracts import names as contract_names

    for problem_type in contract_names.PROBLEM_TYPES:
        assert tuple(n for n, _ in pair_features.features(problem_type)) == contract_names.data_quality_features(problem_type)
