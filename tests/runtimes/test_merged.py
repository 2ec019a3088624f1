"""A forest's trees joined into one tree: one walk answers a small batch bit for bit as the
trees one by one (and scikit-learn) do; past its bounds the forest walks tree by tree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from modelport.runtimes import _merged
from modelport.runtimes._forest import forest_of
from modelport.runtimes._merged import MAX_CELLS, MAX_ROWS
from tests.runtimes.test_forest import XR, YR, X, Y

YF = YR / 7.0 + 0.123  # targets whose sums round differently when added in another order
RNG = np.random.default_rng(3)


def _wide(rows: np.ndarray, n: int) -> np.ndarray:
    """``n`` rows in and well beyond the range of ``rows``."""
    low, high = rows.min(axis=0), rows.max(axis=0)
    span = high - low
    return RNG.uniform(low - span, high + span, size=(n, rows.shape[1]))


@pytest.mark.parametrize(
    ("estimator", "x", "y"),
    [
        (RandomForestClassifier(n_estimators=100, random_state=0), X, Y),
        (ExtraTreesClassifier(n_estimators=37, random_state=1), X, Y),
        (RandomForestClassifier(n_estimators=3, max_depth=2, random_state=2), X, Y),
        (RandomForestRegressor(n_estimators=100, random_state=3), XR, YF),
        (ExtraTreesRegressor(n_estimators=50, min_samples_leaf=4, random_state=4), XR, YF),
    ],
    ids=["forest-100", "extra-37", "shallow-3", "regressor", "extra-regressor"],
)
def test_one_walk_answers_as_the_trees_do(estimator: Any, x: np.ndarray, y: np.ndarray) -> None:
    model = estimator.fit(x, y)
    forest = forest_of(model)
    assert forest is not None
    assert forest.merged is not None
    wide = min(MAX_ROWS, MAX_CELLS // (x.shape[1] + 1))
    assert forest.merged.rows == wide // len(model.estimators_)
    own = model.predict_proba if hasattr(model, "predict_proba") else model.predict
    for n in (2, 7, forest.merged.rows):
        rows = np.ascontiguousarray(_wide(x, n), dtype=np.float32)
        joined, each = forest._answer(rows, True), forest._answer(rows, False)
        np.testing.assert_array_equal(joined, each)
        np.testing.assert_array_equal(forest(rows), own(rows))
    for row in np.ascontiguousarray(_wide(x, 200), dtype=np.float32):  # one row at a time
        np.testing.assert_array_equal(forest(row[None]), own(row[None]))


def test_a_batch_past_the_row_bound_walks_tree_by_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    forest = forest_of(RandomForestClassifier(n_estimators=50, random_state=0).fit(X, Y))
    assert forest is not None
    assert forest.merged is not None
    walks: list[int] = []
    joined_total = forest.merged.total

    def counted(rows: np.ndarray) -> np.ndarray:
        walks.append(len(rows))
        return joined_total(rows)

    monkeypatch.setattr(forest.merged, "total", counted)
    limit = forest.merged.rows
    forest(_wide(X, limit))
    forest(_wide(X, limit + 1))
    assert walks == [limit]


def test_forests_too_large_or_of_one_tree_walk_tree_by_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    single = forest_of(RandomForestClassifier(n_estimators=1, random_state=0).fit(X, Y))
    assert single is not None
    assert single.merged is None
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)
    nodes = sum(e.tree_.node_count for e in model.estimators_) + 9
    size = nodes * (64 + 8 * 3)  # a node, and its three values
    monkeypatch.setattr(_merged, "MAX_BYTES", size - 1)
    large = forest_of(model)
    assert large is not None
    assert large.merged is None
    np.testing.assert_array_equal(large(X[:3]), model.predict_proba(X[:3]))
    monkeypatch.setattr(_merged, "MAX_BYTES", size)
    fits = forest_of(model)
    assert fits is not None
    assert fits.merged is not None


def test_rows_too_wide_for_even_one_walk_go_tree_by_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tree gets a copy of the batch: a wide one (or a forest of thousands of trees) would
    cost more copied than walked apart."""
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)
    monkeypatch.setattr(_merged, "MAX_CELLS", 10 * 5 - 1)  # not one row of 4 features + 1
    wide = forest_of(model)
    assert wide is not None
    assert wide.merged is None
    np.testing.assert_array_equal(wide(X[:1]), model.predict_proba(X[:1]))
    monkeypatch.setattr(_merged, "MAX_CELLS", 10 * 5)
    narrow = forest_of(model)
    assert narrow is not None
    assert narrow.merged is not None
    assert narrow.merged.rows == 1


def test_a_joined_tree_that_answers_otherwise_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    def off_by_a_bit(self: _merged.Merged, x: np.ndarray) -> np.ndarray:
        return np.nextafter(total(self, x), np.inf)

    total = _merged.Merged.total
    monkeypatch.setattr(_merged.Merged, "total", off_by_a_bit)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)
    forest = forest_of(model)
    assert forest is not None
    assert forest.merged is None
    np.testing.assert_array_equal(forest(X[:1]), model.predict_proba(X[:1]))
