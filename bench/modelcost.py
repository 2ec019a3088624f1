"""The model alone, in-process: ``python -m bench.modelcost PICKLE`` prints, as JSON, what one
``predict_proba`` costs at a few batch sizes (microseconds per row, best of several runs), the
same as modelport answers it where that differs (a forest through its trees' tables, a
LogisticRegression from its coefficients), and what the tutorial's
``predict`` + ``predict_proba`` of one row costs. Run with the modelport venv's Python, so it uses
the same scikit-learn as both servers."""

from __future__ import annotations

import json
import pickle
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from modelport.runtimes._forest import forest_of
from modelport.runtimes._linear import linear_of

BATCHES = (1, 8, 64, 256)


def _best_us(call: Callable[[], object], rows: int, budget_s: float = 0.3) -> float:
    best = float("inf")
    deadline = time.perf_counter() + budget_s
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
        runs += 1
    return 1e6 * best / rows


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        model = pickle.load(f)  # the bench's own pickle
    row = np.array([[5.1, 3.5, 1.4, 0.2]])
    per_row = {}
    for n in BATCHES:
        batch = np.repeat(row, n, axis=0)
        per_row[str(n)] = _best_us(partial(model.predict_proba, batch), n)
    tutorial = _best_us(lambda: (model.predict(row), model.predict_proba(row)), 1)
    costs: dict[str, object] = {"proba_us_per_row": per_row, "tutorial_one_row_us": tutorial}
    forest = forest_of(model)
    fast = forest or linear_of(model)
    if fast is not None:
        costs["served_us_per_row"] = {
            str(n): _best_us(partial(fast, np.repeat(row, n, axis=0)), n) for n in BATCHES
        }
        costs["served_how"] = (
            "its trees joined into one walk for a small batch, tree by tree past that"
            if forest is not None
            else "from its coefficients, the same operations as its predict_proba"
        )
    print(json.dumps(costs))


if __name__ == "__main__":
    main()
