"""A fitted scikit-learn forest answered through its trees' own tables.

A forest's ``predict_proba`` sends every tree through scikit-learn's generic estimator path
(input checks, a joblib dispatch, a lock), some 13 us of Python per tree: for a 100-tree forest
and a batch of 64 rows that is 1.4 ms, where walking the trees takes 0.2 ms. Here each tree's
``tree_`` (scikit-learn's low-level ``Tree``) gives the leaf of every row, and the leaf's stored
values (``tree_.value``, class fractions since scikit-learn 1.4, which is what its
``predict_proba`` returns) are added up in the estimators' order and divided by their count:
the same operations on the same numbers as scikit-learn's sequential path, so the answer is bit
for bit the forest's own. (A forest with ``n_jobs`` above 1 adds its trees in whatever order its
threads finish, so its own answer can differ from itself in the last bit; this order is fixed.)
A load-time probe checks that against the forest itself; a forest it does not match is left to
scikit-learn, and so is every batch the fast path would read otherwise than scikit-learn's input
check (not finite in float32, complex, empty), so that scikit-learn answers or says why.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import sklearn
from sklearn.base import is_classifier

from modelport.runtimes._merged import merged

__all__ = ["Forest", "forest_of"]

_FORESTS = frozenset(
    {
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "RandomForestRegressor",
        "ExtraTreesRegressor",
    }
)
_PROBE_ROWS = 256
_SINGLE_ROWS = 32  # probe rows the joined tree also answers one at a time


def _stores_fractions() -> bool:
    """Whether this scikit-learn keeps class fractions in ``tree_.value`` (1.4 and later; before,
    counts that ``predict_proba`` divided on every call)."""
    found = re.match(r"(\d+)\.(\d+)", sklearn.__version__)  # "1.6.1", "1.10rc1", "1.7.dev0"
    return found is not None and (int(found[1]), int(found[2])) >= (1, 4)


class Forest:
    """A single-output forest's trees, each with its leaf values as ``predict_proba`` reads
    them (views of the trees' own arrays: no copy)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classifier = bool(is_classifier(model))
        self.classes = np.asarray(model.classes_) if self.classifier else None
        self.n_features = int(model.n_features_in_)
        self.width = int(model.n_classes_) if self.classifier else 1
        self.trees = [(e.tree_, e.tree_.value[:, 0, : self.width]) for e in model.estimators_]
        self.merged = merged([e.tree_ for e in model.estimators_], self.n_features, self.width)

    def __call__(self, rows: Any) -> np.ndarray | None:
        """Class probabilities (or predicted values) of ``rows``, or ``None`` for rows that only
        scikit-learn's own path should answer (a sparse matrix among them)."""
        x = self._float32(rows)
        if x is None:
            return None
        joined = self.merged is not None and len(x) <= self.merged.rows
        return self._answer(x, joined)

    def _float32(self, rows: Any) -> np.ndarray | None:
        """The float32 rows scikit-learn's own input check makes of ``rows``; ``None`` where it
        would refuse them or read them otherwise."""
        if not isinstance(rows, np.ndarray):
            return None
        if rows.ndim != 2 or rows.shape[1] != self.n_features or not len(rows):
            return None
        if np.iscomplexobj(rows):
            return None
        try:  # the float32 copy scikit-learn's own check makes (too large becomes infinite)
            with np.errstate(over="ignore"):
                x = np.ascontiguousarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            return None
        return x if np.isfinite(x).all() else None

    def _answer(self, x: np.ndarray, joined: bool) -> np.ndarray:
        """The trees' values for ``x``, added up in order and divided by their count: from one
        walk of the joined tree (:mod:`._merged`), or one walk per tree."""
        if joined and self.merged is not None:
            out = self.merged.total(x)
        else:
            out = np.zeros((len(x), self.width), dtype=np.float64)
            for tree, values in self.trees:
                out += values.take(tree.apply(x), axis=0)
        out /= len(self.trees)
        return out if self.classifier else out.reshape(-1)

    def agrees(self, rows: np.ndarray, expected: np.ndarray) -> bool:
        """Whether both walks answer ``rows`` as ``expected`` (the forest's own answer); the
        joined tree is dropped when only it does not."""
        x = self._float32(rows)
        if x is None or not np.array_equal(self._answer(x, False), expected):
            return False
        if self.merged is not None:
            step = self.merged.rows  # whole batches as large as it takes, and single rows
            parts = [self._answer(x[i : i + step], True) for i in range(0, len(x), step)]
            ones = [self._answer(x[i : i + 1], True) for i in range(_SINGLE_ROWS)]
            same = np.array_equal(np.concatenate(parts), expected)
            if not same or not np.array_equal(np.concatenate(ones), expected[:_SINGLE_ROWS]):
                self.merged = None
        return True


def _probe(model: Any) -> np.ndarray:
    """Rows near the forest's split thresholds, feature by feature, on both sides."""
    random = np.random.default_rng(0)
    features = np.concatenate([e.tree_.feature for e in model.estimators_])
    thresholds = np.concatenate([e.tree_.threshold for e in model.estimators_])
    splits = features >= 0  # leaves have none
    order = np.argsort(features[splits], kind="stable")
    features, thresholds = features[splits][order], thresholds[splits][order]
    n_features = int(model.n_features_in_)
    starts = np.searchsorted(features, np.arange(n_features + 1))
    columns = []
    for feature in range(n_features):
        cuts = thresholds[starts[feature] : starts[feature + 1]]
        centres = random.choice(cuts, _PROBE_ROWS) if cuts.size else np.zeros(_PROBE_ROWS)
        spread = random.normal(0.0, 1e-3, _PROBE_ROWS) * np.maximum(np.abs(centres), 1.0)
        columns.append(centres + spread)
    return np.stack(columns, axis=1)


def forest_of(model: Any) -> Forest | None:
    """The fast reading of a fitted single-output scikit-learn forest, when it answers probe rows
    exactly as the forest does (summing its trees in order); else ``None``."""
    kind = type(model)
    if kind.__name__ not in _FORESTS or not kind.__module__.startswith("sklearn."):
        return None
    if not _stores_fractions() or getattr(model, "n_outputs_", None) != 1:
        return None
    if not getattr(model, "estimators_", None):
        return None
    jobs = getattr(model, "n_jobs", None)
    try:  # a scikit-learn whose trees are laid out otherwise keeps its own path
        forest = Forest(model)
        rows = _probe(model)
        model.n_jobs = None  # its trees summed in order, as here (loading: nothing predicts yet)
        with warnings.catch_warnings():  # a forest fitted on a DataFrame, probed with an array
            warnings.simplefilter("ignore", UserWarning)
            expected = model.predict_proba(rows) if forest.classifier else model.predict(rows)
        agrees = forest.agrees(rows, expected)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    finally:
        model.n_jobs = jobs
    return forest if agrees else None
