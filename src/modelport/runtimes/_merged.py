"""A forest's trees joined into one scikit-learn ``Tree``, walked by one call for a small batch.

Each tree's ``tree_.apply`` costs about 1.7 us of fixed work (checks, an output array, a release
and retake of the GIL) however few rows it gets: for a 100-tree forest that is 0.2 ms a batch,
some 9 us a request at the batch sizes a server sees, and a hundred handovers of the GIL. Here
the trees' nodes are copied, one after the other, into a single ``Tree`` whose first levels
send a row to tree ``t`` by a column that holds ``t`` (thresholds ``t - 0.5``, a balanced
binary search); each tree's own nodes follow, their children renumbered and their features
moved one column right. A batch of ``n`` rows becomes ``trees * n`` rows, ``[t, *row]``, and one
``apply`` gives every (tree, row) leaf. The comparisons are scikit-learn's own (the same float32
rows against the same float64 thresholds), so every leaf is the one that tree's own ``apply``
gives.

The copy costs 64 bytes a node and 8 for each value a leaf stores (the joined tree keeps them,
and :class:`Merged` reads them in place); a forest whose copy would pass :data:`MAX_BYTES` keeps
the per-tree walk. So does a batch past :data:`MAX_ROWS` joined rows or :data:`MAX_CELLS` joined
values (rows times features), where one large walk, and the copy of the rows for every tree, cost
more than a hundred small walks (measured for an Iris forest: 11 vs 192 us a batch at 1 row, 92
vs 232 us at 64, slower past some 160 rows; with 500 features a 64-row batch was slower joined).
The trees' values are added up one tree after another, as scikit-learn adds them: a reduce over
the trees' axis does that whenever a tree gives more than one value for the batch; one value a
tree (one row of a regressor) would be summed pairwise, so it is accumulated instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.tree._tree import Tree

__all__ = ["MAX_BYTES", "MAX_CELLS", "MAX_ROWS", "Merged", "merged"]

MAX_BYTES = 16 * 1024 * 1024  # the joined tree's nodes and values, at most
MAX_ROWS = 8 * 1024  # joined rows (trees times the batch's rows) one walk takes
MAX_CELLS = 64 * 1024  # joined values (joined rows times the features and the tree's number)
_LEAF = -1  # scikit-learn's TREE_LEAF: a leaf's children


class Merged:
    """One ``Tree`` for all of a forest's trees and its leaves' values; :meth:`total` walks a
    batch through it."""

    def __init__(self, tree: Any, count: int, n_features: int) -> None:
        self.tree = tree
        self.values = tree.value[:, 0, :]  # (nodes, width): a view of the tree's own values
        self.count = count  # trees
        self.n_features = n_features
        # a batch's rows one walk takes (0: none, the forest walks tree by tree)
        self.rows = min(MAX_ROWS, MAX_CELLS // (n_features + 1)) // count
        self.ids = np.arange(count, dtype=np.float32)

    def total(self, x: np.ndarray) -> np.ndarray:
        """The trees' leaf values for the rows of ``x`` (float32, C-ordered), added up in the
        trees' order: ``(len(x), width)``."""
        n, count = len(x), self.count
        joined = np.empty((count * n, self.n_features + 1), dtype=np.float32)
        joined[:, 0] = np.repeat(self.ids, n)
        joined[:, 1:].reshape(count, n, self.n_features)[:] = x
        found = self.values.take(self.tree.apply(joined), axis=0)  # tree by tree, row by row
        found = found.reshape(count, -1)  # a tree's values for the whole batch: one row
        if found.shape[1] == 1:  # one value a tree, which a reduce would add up pairwise
            total: np.ndarray = np.add.accumulate(found[:, 0])[-1:].reshape(1, 1)
        else:  # row after row, so tree after tree
            total = np.add.reduce(found, axis=0).reshape(n, -1)
        return total


def _dispatch(lo: int, hi: int, roots: list[int], nodes: list[tuple[int, int, float]]) -> int:
    """The node that sends a row to tree ``lo`` ... ``hi - 1`` by column 0 (appended to
    ``nodes`` as ``(left, right, threshold)``); a single tree is its own root."""
    if hi - lo == 1:
        return roots[lo]
    index = len(nodes)
    nodes.append((0, 0, 0.0))
    mid = (lo + hi) // 2
    left = _dispatch(lo, mid, roots, nodes)
    right = _dispatch(mid, hi, roots, nodes)
    nodes[index] = (left, right, mid - 0.5)
    return index


def merged(trees: list[Any], n_features: int, width: int) -> Merged | None:
    """The joined tree of ``trees`` (scikit-learn ``Tree`` objects of one single-output forest
    with ``width`` values a leaf), or ``None`` when the forest is too large or its trees are laid
    out otherwise than this scikit-learn's are expected to be."""
    count = len(trees)
    states = [tree.__getstate__() for tree in trees]
    total = count - 1 + sum(int(state["node_count"]) for state in states)
    kind = states[0]["nodes"].dtype
    if count < 2 or total * (kind.itemsize + 8 * width) > MAX_BYTES:
        return None
    nodes = np.zeros(total, dtype=kind)
    values = np.zeros((total, 1, width), dtype=np.float64)
    roots, offset = [], count - 1  # the dispatching nodes come first
    for state in states:
        roots.append(offset)
        offset += int(state["node_count"])
    dispatch: list[tuple[int, int, float]] = []
    _dispatch(0, count, roots, dispatch)
    for index, (left, right, threshold) in enumerate(dispatch):
        nodes[index]["left_child"], nodes[index]["right_child"] = left, right
        nodes[index]["threshold"] = threshold  # feature 0: the tree's number
        nodes[index]["n_node_samples"] = nodes[index]["weighted_n_node_samples"] = 1
    for state, start in zip(states, roots, strict=True):
        own = state["nodes"]
        if own.dtype != kind:
            return None
        part = nodes[start : start + len(own)]
        part[...] = own
        leaf = own["left_child"] == _LEAF
        part["left_child"] = np.where(leaf, _LEAF, own["left_child"] + start)
        part["right_child"] = np.where(leaf, _LEAF, own["right_child"] + start)
        part["feature"] = np.where(leaf, own["feature"], own["feature"] + 1)
        values[start : start + len(own), 0, :] = state["values"][:, 0, :width]
    tree = Tree(n_features + 1, np.array([width], dtype=np.intp), 1)
    depth = int(np.ceil(np.log2(count))) + max(int(state["max_depth"]) for state in states)
    tree.__setstate__({"max_depth": depth, "node_count": total, "nodes": nodes, "values": values})
    joined = Merged(tree, count, n_features)
    return joined if joined.rows else None
