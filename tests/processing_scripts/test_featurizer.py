"""featurizer.PairFeaturizer: the estimator contract, symmetry, learned state, input checks."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import featurizer
from featurizer import FEATURE_NAMES, SUPERVISED_FEATURE_NAMES, PairFeaturizer
from pairs_fixture import binary_rows, graded_rows

PAIRS = [(r[3], r[4]) for r in binary_rows()]
LABELS = np.array([int(r[0]) for r in binary_rows()])


def test_shape_and_names():
    fz = PairFeaturizer().fit(PAIRS, LABELS)
    out = fz.transform(PAIRS[:5])
    names = list(fz.get_feature_names_out())
    assert out.shape == (5, len(FEATURE_NAMES) + len(SUPERVISED_FEATURE_NAMES)) == (5, len(names))
    assert len(set(names)) == len(names)
    assert np.isfinite(out).all()
    assert PairFeaturizer(supervised=False).fit(PAIRS).transform(PAIRS[:2]).shape == (2, len(FEATURE_NAMES))


def test_features_are_symmetric_in_the_two_sentences():
    fz = PairFeaturizer().fit(PAIRS, LABELS)
    swapped = [(b, a) for a, b in PAIRS]
    np.testing.assert_allclose(fz.transform(PAIRS), fz.transform(swapped), rtol=1e-12, atol=1e-12)


def test_identical_sentences_overlap_fully_and_unrelated_ones_do_not():
    fz = PairFeaturizer().fit(PAIRS, LABELS)
    s, other = PAIRS[0][0], "Completely unrelated words about gardening appear here."
    same, diff = fz.transform([(s, s), (s, other)])
    names = list(fz.get_feature_names_out())
    for name in ("word1_f1", "word4_f1", "bleu_mean", "rouge_l_f1", "tfidf_word_cosine", "char3_jaccard"):
        assert same[names.index(name)] == pytest.approx(1.0)
        assert diff[names.index(name)] < 0.3
    assert same[names.index("word_edit_norm")] == 0.0


def test_numbers_and_negation_are_compared():
    fz = PairFeaturizer(supervised=False).fit(PAIRS)
    names = list(fz.get_feature_names_out())
    a, b = fz.transform([("Profit rose 12 percent to $1,200.", "Profit rose 12 percent to $1200."),
                         ("Profit rose 12 percent.", "Profit did not rise 15 percent.")])
    assert a[names.index("num_equal")] == 1.0 and a[names.index("num_unmatched")] == 0
    assert b[names.index("num_equal")] == 0.0 and b[names.index("num_unmatched")] == 2
    assert b[names.index("neg_mismatch")] == 1.0 and a[names.index("neg_mismatch")] == 0.0


def test_learned_state_comes_from_fit_only_and_transform_does_not_change_it():
    fz = PairFeaturizer().fit(PAIRS[:20], LABELS[:20])
    before = pickle.dumps(fz)
    fz.transform(PAIRS + [("Zyzzyva words never seen before", "in training at all")])
    assert pickle.dumps(fz) == before
    assert "zyzzyva" not in fz.word_idf_
    assert fz.n_documents_ == 40
    assert max(fz.word_idf_.values()) <= fz.default_idf_


def test_fit_transform_cross_fits_only_the_label_aware_columns():
    fz = PairFeaturizer()
    crossfit = fz.fit_transform(PAIRS, LABELS)
    full = fz.transform(PAIRS)
    n = len(FEATURE_NAMES)
    np.testing.assert_allclose(crossfit[:, :n], full[:, :n])
    assert not np.allclose(crossfit[:, n:], full[:, n:])  # out-of-fold statistics differ
    # Same seed, same result.
    np.testing.assert_array_equal(crossfit, PairFeaturizer().fit_transform(PAIRS, LABELS))


def test_label_aware_columns_without_labels_are_zero_and_graded_labels_work():
    no_y = PairFeaturizer().fit(PAIRS).transform(PAIRS)
    assert not no_y[:, len(FEATURE_NAMES):].any()
    graded = [(r[3], r[4]) for r in graded_rows()]
    scores = np.array([float(r[0]) for r in graded_rows()])
    out = PairFeaturizer().fit_transform(graded, scores)
    assert out[:, len(FEATURE_NAMES):].any()


def test_accepts_dataframes_arrays_and_lists():
    fz = PairFeaturizer(supervised=False).fit(PAIRS)
    df = pd.DataFrame(PAIRS[:3], columns=["sentence1", "sentence2"])
    df.insert(0, "label", [1, 0, 1])
    expected = fz.transform(PAIRS[:3])
    np.testing.assert_array_equal(fz.transform(df), expected)
    np.testing.assert_array_equal(fz.transform(np.array(PAIRS[:3], dtype=object)), expected)


@pytest.mark.parametrize("bad, error", [
    ([("a", 1)], TypeError),
    ([("a",)], ValueError),
    ([("a", "b", "c")], ValueError),
    (np.array(["a", "b"], dtype=object), ValueError),
])
def test_bad_inputs_raise(bad, error):
    fz = PairFeaturizer().fit(PAIRS)
    with pytest.raises(error, match="row 0|2-D"):
        fz.transform(bad)


def test_fit_needs_pairs_and_matching_labels():
    with pytest.raises(ValueError, match="at least one"):
        PairFeaturizer().fit([])
    with pytest.raises(ValueError, match="labels"):
        PairFeaturizer().fit(PAIRS, LABELS[:3])


def test_estimator_contract_params_and_clone():
    fz = PairFeaturizer(char_ngram=4, supervised=False, random_state=3)
    assert clone(fz).get_params() == fz.get_params()
    assert not hasattr(clone(fz), "word_idf_")
    with pytest.raises(Exception, match="not fitted"):
        PairFeaturizer().transform(PAIRS)


def test_long_and_degenerate_sentences_are_bounded():
    fz = PairFeaturizer().fit(PAIRS, LABELS)
    long = " ".join(f"word{i}" for i in range(5000))
    out = fz.transform([(long, long[::-1]), ("...", "!!!"), ("a", "a")])
    assert np.isfinite(out).all()
    assert featurizer.MAX_TOKENS < 5000
