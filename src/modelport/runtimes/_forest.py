"""A fitted scikit-learn forest answered through its trees' own tables.

A forest's ``predict_proba`` sends every tree through scikit-learn's generic estimator path:
input checks, a joblib dispatch and a normalisation of the tree's leaf values, some 13 us of
Python per tree. For a 100-tree forest and a batch of 64 rows that is 1.4 ms, where walking the
trees takes 0.2 ms. Here each tree's ``tree_`` (scikit-learn's low-level ``Tree``) gives the leaf
of every row, and the leaf's values, normalised once at load exactly as scikit-learn normalises
them on every call, are added up in the estimators' order and divided by their count: the same
operations on the same numbers, so the answer is bit for bit the forest's own. A load-time probe
checks that against the forest itself; a forest it does not match is left to scikit-learn, and so
is every batch scikit-learn would refuse (so that its message says why).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["MAX_TABLE_BYTES", "Forest", "forest_of"]

_FORESTS = frozenset(
    {
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "RandomForestRegressor",
        "ExtraTreesRegressor",
    }
)
_PROBE_ROWS = 256
MAX_TABLE_BYTES = 64 * 2**20
"""Normalised leaf tables larger than this (a forest of deep trees over many classes) would
double the model's memory: such a forest keeps scikit-learn's own path."""


class Forest:
    """A single-output forest's trees as ``(tree, leaf values)`` pairs."""

    def __init__(self, model: Any) -> None:
        self.classifier = hasattr(model, "classes_")
        self.n_features = int(model.n_features_in_)
        self.width = int(model.n_classes_) if self.classifier else 1
        self.trees: list[tuple[Any, np.ndarray]] = []
        for estimator in model.estimators_:
            values = np.array(estimator.tree_.value[:, 0, : self.width], dtype=np.float64)
            if self.classifier:  # as DecisionTreeClassifier.predict_proba does on each call
                normalizer = values.sum(axis=1)[:, np.newaxis]
                normalizer[normalizer == 0.0] = 1.0
                values /= normalizer
            self.trees.append((estimator.tree_, values))

    def __call__(self, rows: np.ndarray) -> np.ndarray | None:
        """Class probabilities (or predicted values) of ``rows``, or ``None`` for rows that only
        scikit-learn's own path should answer."""
        try:  # the float32 copy scikit-learn's own check makes (too large becomes infinite)
            with np.errstate(over="ignore"):
                x = np.ascontiguousarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            return None
        if x.ndim != 2 or x.shape[1] != self.n_features or not np.isfinite(x).all():
            return None
        out = np.zeros((len(x), self.width), dtype=np.float64)
        for tree, values in self.trees:
            out += values.take(tree.apply(x), axis=0)
        out /= len(self.trees)
        return out if self.classifier else out[:, 0]


def _probe(model: Any) -> np.ndarray:
    """Rows on both sides of the forest's split thresholds, feature by feature."""
    random = np.random.default_rng(0)
    columns = []
    for feature in range(int(model.n_features_in_)):
        cuts = np.concatenate(
            [e.tree_.threshold[e.tree_.feature == feature] for e in model.estimators_]
        )
        centres = random.choice(cuts, _PROBE_ROWS) if cuts.size else np.zeros(_PROBE_ROWS)
        columns.append(centres + random.normal(0.0, 1e-3, _PROBE_ROWS))
    return np.stack(columns, axis=1)


def _table_bytes(model: Any) -> int:
    width = int(getattr(model, "n_classes_", 1))
    return sum(e.tree_.node_count * width * 8 for e in model.estimators_)


def forest_of(model: Any) -> Forest | None:
    """The fast reading of a fitted single-output scikit-learn forest, when it answers probe rows
    exactly as the forest does; else ``None``."""
    kind = type(model)
    if kind.__name__ not in _FORESTS or not kind.__module__.startswith("sklearn."):
        return None
    if getattr(model, "n_outputs_", None) != 1 or not getattr(model, "estimators_", None):
        return None
    if _table_bytes(model) > MAX_TABLE_BYTES:
        return None
    try:  # a scikit-learn whose trees are laid out otherwise keeps its own path
        forest = Forest(model)
        rows = _probe(model)
        with warnings.catch_warnings():  # a forest fitted on a DataFrame, probed with an array
            warnings.simplefilter("ignore", UserWarning)
            expected = model.predict_proba(rows) if forest.classifier else model.predict(rows)
        got = forest(rows)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return forest if got is not None and np.array_equal(got, expected) else None
