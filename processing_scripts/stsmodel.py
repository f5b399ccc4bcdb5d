"""The paraphrase / similarity model: one scikit-learn Pipeline (featurizer + estimator).

``build_pipeline`` is used by ``train.py`` and by the benchmark
(``bench/model_quality.py``), so the configuration measured there is the one
trained here. Ships in ``model.tar.gz`` (``code/``) because the pickled
pipeline refers to :class:`ClippedRegressor`.

Estimators (``estimator`` argument):

- ``ensemble`` (default): the average of the three below (soft voting for
  classification, mean prediction for regression).
- ``logistic``: standardized features, L2 logistic regression (``Ridge`` for
  regression), strength ``c`` (``alpha = 1 / c`` for Ridge).
- ``boosting``: histogram gradient boosting (``learning_rate``, ``max_iter``,
  ``max_leaf_nodes``, ``min_samples_leaf``, ``l2_regularization``).
- ``mlp``: standardized features, one hidden layer of ``hidden_units`` ReLUs,
  L2 penalty ``alpha`` (scikit-learn's ``MLPClassifier`` / ``MLPRegressor``).

Probabilities: every member is fitted on log loss and the ensemble averages
them; cross-validation on the MSRP training file found these averaged
probabilities well calibrated (lower log loss and calibration error than Platt
scaling on top, docs/model.md), so the default ``calibration`` is ``none``.
``sigmoid`` (Platt scaling) or ``isotonic`` wrap the classifier in
``CalibratedClassifierCV``, fitted on ``calibration_folds`` out-of-fold
predictions (one final model). Regressors are
wrapped in :class:`ClippedRegressor`, which keeps predictions inside the
label range seen in training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from stscontracts import names

from featurizer import PairFeaturizer

ESTIMATORS = ("ensemble", "logistic", "boosting", "mlp")
CALIBRATIONS = ("sigmoid", "isotonic", "none")
#: Adam mini-batch size of the MLP: large batches train ~5x faster than 200 on
#: a few thousand pairs at the same accuracy (bench/model_quality.py).
MLP_BATCH = 1000


@dataclass(frozen=True)
class Hyperparameters:
    """Every tunable of the model, with the defaults chosen by cross-validation (docs/model.md).

    The names, with ``_`` spelled ``-``, are ``train.py``'s hyperparameters.
    """

    estimator: str = "ensemble"
    c: float = 0.3
    learning_rate: float = 0.1
    max_iter: int = 100
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    hidden_units: int = 32
    alpha: float = 1.0
    calibration: str = "none"
    calibration_folds: int = 3
    supervised_features: bool = True
    random_state: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.estimator not in ESTIMATORS:
            problems.append(f"estimator {self.estimator!r} is not one of {', '.join(ESTIMATORS)}")
        if self.calibration not in CALIBRATIONS:
            problems.append(f"calibration {self.calibration!r} is not one of {', '.join(CALIBRATIONS)}")
        for name in ("c", "learning_rate", "alpha"):
            if not getattr(self, name) > 0:
                problems.append(f"{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("max_iter", "max_leaf_nodes", "min_samples_leaf", "hidden_units"):
            if getattr(self, name) < (2 if name == "max_leaf_nodes" else 1):
                problems.append(f"{name.replace('_', '-')} is too small: {getattr(self, name)}")
        if self.l2_regularization < 0:
            problems.append(f"l2-regularization must be >= 0, got {self.l2_regularization}")
        if self.calibration_folds < 2:
            problems.append(f"calibration-folds must be >= 2, got {self.calibration_folds}")
        if problems:
            raise ValueError("; ".join(problems))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


class ClippedRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """A regressor whose predictions are clipped to the label range seen in ``fit``."""

    def __init__(self, regressor) -> None:
        self.regressor = regressor

    def fit(self, X, y):
        y = np.asarray(y, dtype=np.float64)
        self.regressor_ = clone(self.regressor).fit(X, y)
        self.y_min_, self.y_max_ = float(y.min()), float(y.max())
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "regressor_")
        return np.clip(self.regressor_.predict(X), self.y_min_, self.y_max_)


def _classifiers(hp: Hyperparameters) -> dict:
    return {
        "logistic": Pipeline([("scale", StandardScaler()),
                              ("lr", LogisticRegression(C=hp.c, max_iter=5000))]),
        "boosting": HistGradientBoostingClassifier(
            learning_rate=hp.learning_rate, max_iter=hp.max_iter, max_leaf_nodes=hp.max_leaf_nodes,
            min_samples_leaf=hp.min_samples_leaf, l2_regularization=hp.l2_regularization,
            early_stopping=False, random_state=hp.random_state),
        "mlp": Pipeline([("scale", StandardScaler()),
                         ("mlp", MLPClassifier(hidden_layer_sizes=(hp.hidden_units,), alpha=hp.alpha, batch_size=MLP_BATCH,
                                               max_iter=2000, random_state=hp.random_state))]),
    }


def _regressors(hp: Hyperparameters) -> dict:
    return {
        "logistic": Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=1.0 / hp.c))]),
        "boosting": HistGradientBoostingRegressor(
            learning_rate=hp.learning_rate, max_iter=hp.max_iter, max_leaf_nodes=hp.max_leaf_nodes,
            min_samples_leaf=hp.min_samples_leaf, l2_regularization=hp.l2_regularization,
            early_stopping=False, random_state=hp.random_state),
        "mlp": Pipeline([("scale", StandardScaler()),
                         ("mlp", MLPRegressor(hidden_layer_sizes=(hp.hidden_units,), alpha=hp.alpha, batch_size=MLP_BATCH,
                                              max_iter=2000, random_state=hp.random_state))]),
    }


def build_estimator(problem_type: str, hp: Hyperparameters):
    """The (unfitted) estimator that follows the featurizer."""
    if problem_type == names.BINARY_CLASSIFICATION:
        members = _classifiers(hp)
        base = (VotingClassifier(list(members.items()), voting="soft")
                if hp.estimator == "ensemble" else members[hp.estimator])
        if hp.calibration == "none":
            return base
        folds = StratifiedKFold(hp.calibration_folds, shuffle=True, random_state=hp.random_state)
        return CalibratedClassifierCV(base, method=hp.calibration, cv=folds, ensemble=False)
    if problem_type == names.REGRESSION:
        members = _regressors(hp)
        base = (VotingRegressor(list(members.items()))
                if hp.estimator == "ensemble" else members[hp.estimator])
        return ClippedRegressor(base)
    raise ValueError(f"unknown problem type {problem_type!r}")


def build_pipeline(problem_type: str, hp: Hyperparameters | None = None) -> Pipeline:
    """Featurizer + estimator for ``problem_type`` (BinaryClassification or Regression)."""
    hp = hp or Hyperparameters()
    featurizer = PairFeaturizer(supervised=hp.supervised_features, random_state=hp.random_state)
    return Pipeline([("features", featurizer), ("model", build_estimator(problem_type, hp))])


def min_class_count(y) -> int:
    """Members of the smaller class (calibration needs at least ``calibration_folds``)."""
    _, counts = np.unique(np.asarray(y), return_counts=True)
    return int(counts.min()) if len(counts) else 0
