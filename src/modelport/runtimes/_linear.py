"""A fitted scikit-learn LogisticRegression answered from its coefficients.

For one row, ``predict_proba`` spends 30 to 70 us in scikit-learn's generic path (the fitted
check, the input check, the array namespace; 32 us with scikit-learn 1.5.2, 73 with 1.9) around
a product of a few numbers. Here the same operations run on the same arrays in the same order
(``rows @ coef_.T + intercept_``, then a softmax for a multinomial model, or the logistic
function for a binary or one-vs-rest one), in 5 to 7 us, so the answer is bit for bit
scikit-learn's. Which of the two formulas this scikit-learn uses is not read from its version:
a load-time probe compares both with the model's own answers, for whole batches and single
rows, and a model that neither matches is left to scikit-learn. So is every batch its input
check would read otherwise or refuse (not float64, not finite, empty).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = ["Linear", "linear_of"]

_PROBE_ROWS = 256
_SINGLE_ROWS = 32  # probe rows also answered one at a time


def _softmax(scores: np.ndarray) -> np.ndarray | None:
    """A multinomial model's probabilities, as ``sklearn.utils.extmath.softmax`` works them
    out; ``None`` for a binary model (one column of scores)."""
    if scores.ndim != 2 or scores.shape[1] < 2:
        return None
    scores -= scores.max(axis=1).reshape((-1, 1))
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1).reshape((-1, 1))
    return scores


def _one_vs_rest(scores: np.ndarray) -> np.ndarray | None:
    """A binary or one-vs-rest model's probabilities, as ``_predict_proba_lr`` works them out;
    ``None`` where every class of a row has probability 0 (scikit-learn answers those)."""
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores.reshape((-1,))
    expit(scores, out=scores)
    if scores.ndim == 1:
        return np.stack([1 - scores, scores], axis=1)
    total = scores.sum(axis=1)
    if (total == 0).any():
        return None
    scores /= total.reshape((scores.shape[0], -1))
    return scores


_FORMULAS: tuple[Callable[[np.ndarray], np.ndarray | None], ...] = (_softmax, _one_vs_rest)


class Linear:
    """A LogisticRegression's coefficients and the formula its ``predict_proba`` applies."""

    def __init__(self, model: Any, formula: Callable[[np.ndarray], np.ndarray | None]) -> None:
        self.model = model
        self.classes = np.asarray(model.classes_)
        self.coef = np.asarray(model.coef_)
        self.intercept = np.asarray(model.intercept_)
        self.n_features = int(self.coef.shape[1])
        self.formula = formula

    def __call__(self, rows: Any) -> np.ndarray | None:
        """Class probabilities of ``rows``, or ``None`` for rows that only scikit-learn's own
        path should answer."""
        if not isinstance(rows, np.ndarray) or rows.dtype != np.float64:
            return None
        if rows.ndim != 2 or rows.shape[1] != self.n_features or not len(rows):
            return None
        if not np.isfinite(rows).all():
            return None
        return self.formula(rows @ self.coef.T + self.intercept)

    def agrees(self, rows: np.ndarray, model: Any) -> bool:
        """Whether this answers ``rows``, as a batch and one row at a time, bit for bit as the
        model does."""
        answer = self(rows)
        if answer is None or not np.array_equal(answer, model.predict_proba(rows)):
            return False
        for i in range(_SINGLE_ROWS):
            one = self(rows[i : i + 1])
            if one is None or not np.array_equal(one, model.predict_proba(rows[i : i + 1])):
                return False
        return True


def _probe(model: Any) -> np.ndarray:
    """Rows around the model's scale: each score near zero as often as far from it."""
    random = np.random.default_rng(0)
    coef = np.asarray(model.coef_, dtype=np.float64)
    scale = 1.0 / np.maximum(np.abs(coef).max(axis=0), 1e-12)  # a unit of score a feature
    rows: np.ndarray = random.normal(0.0, 1.0, (_PROBE_ROWS, coef.shape[1])) * scale
    rows[: _PROBE_ROWS // 4] *= 1e-3  # near every hyperplane
    rows[-(_PROBE_ROWS // 4) :] *= 1e3  # far from them: probabilities of exactly 0 and 1
    return rows


def linear_of(model: Any) -> Linear | None:
    """The fast reading of a fitted LogisticRegression, when it answers probe rows exactly as
    the model does; else ``None``."""
    kind = type(model)
    if kind.__name__ != "LogisticRegression" or not kind.__module__.startswith("sklearn."):
        return None
    try:  # a scikit-learn that keeps its coefficients otherwise keeps its own path
        coef = np.asarray(model.coef_)
        if coef.dtype != np.float64 or coef.ndim != 2 or not np.isfinite(coef).all():
            return None
        rows = _probe(model)
        with warnings.catch_warnings():  # a model fitted on a DataFrame, probed with an array
            warnings.simplefilter("ignore", UserWarning)
            for formula in _FORMULAS:
                linear = Linear(model, formula)
                if linear.agrees(rows, model):
                    return linear
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    return None
