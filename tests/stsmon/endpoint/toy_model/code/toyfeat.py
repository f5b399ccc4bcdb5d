"""Toy featurizer of the test model: word overlap of a sentence pair (pickled by reference)."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


def _words(s):
    return set(s.lower().split())


class OverlapFeatures(TransformerMixin, BaseEstimator):
    """Three features per pair; ``work`` loop iterations per pair burn CPU like a
    real featurizer (about 25,000 per millisecond)."""

    def __init__(self, work=0):
        self.work = work

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        out = np.empty((len(X), 3))
        for i, (a, b) in enumerate(X):
            x = 0
            for _ in range(self.work):
                x += 1
            wa, wb = _words(a), _words(b)
            common = len(wa & wb)
            out[i] = (common / max(len(wa | wb), 1), common / max(min(len(wa), len(wb)), 1),
                      abs(len(wa) - len(wb)) / max(len(wa) + len(wb), 1))
        return out
