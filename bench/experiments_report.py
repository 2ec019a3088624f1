"""``python -m bench.experiments_report [N ...]``: how long ``GET /experiments/{model}`` takes to
compute over ``N`` recorded one-row prediction requests (default 1,000,000).

For each ``N`` a fresh SQLite outcome store (in a temporary folder, or ``BENCH_DB_DIR``) is filled
through :meth:`Store.write` in batches of 50,000: two variants (``v1`` served by version 1, ``v2``
by version 2, half each), one predicted row per request, 1 % answered 500 and 1 % 422, latencies
log-normal around 5 ms (``v2`` a little slower), and feedback (a true label) on one request in
100. Then it times the report the route calls (:func:`experiment_report`): ``cold`` on a store
just opened (SQLite's page cache empty; the operating system's file cache is whatever filling
left), ``warm`` the same report again on that connection, and once more within an experiment
window covering the newer half of the requests.

``BENCH_GAP_S`` sets the seconds between two requests (default 0.001: a busy model; 0.25 is a
quiet one, 10 million requests over a month, where each minute holds a few hundred).

Generation costs more than the report (about 5 s and 160 MB per million requests on a small
machine), so large sizes take minutes and gigabytes.

Measured (2 shared cores, SQLite, 2026-11-29), with the per-minute totals (:mod:`.rollup`):
1,000,000 requests: 0.09 s a report cold, 0.09 s warm, 0.05 s for a window of half of them;
10,000,000 (97,894 with feedback): 0.49 s cold, 0.40 s warm, 0.32 s for a window of half;
10,000,000 over a month (``BENCH_GAP_S=0.25``): 0.53 s cold, 0.46 s warm, 0.35 s for half.
Most of it is joining the feedback to its requests (one row in a hundred); the traffic part
reads the per-minute totals and the hourly latency bins. Without the totals (the records walked
one by one) the same report took 0.44-0.59 s at one million and 2.3-2.8 s at three.
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import scipy.stats  # noqa: F401  # a server imports it at its first report: not timed here

from modelport.outcomes.experiments import Experiment
from modelport.outcomes.records import PredictionRow, RequestRow
from modelport.outcomes.report import experiment_report
from modelport.outcomes.sqlite_store import SqliteStore

MODEL = "wine"
BATCH = 50_000
FEEDBACK_EVERY = 100
START = 1_700_000_000.0
GAP_S = float(os.environ.get("BENCH_GAP_S", "0.001"))  # between two requests: 1,000 a second
_FEEDBACK = (
    "INSERT INTO mp_feedback (request_id, row_index, label, value, ts)"
    " SELECT request_id, 0, CAST(abs(random()) % 3 AS TEXT), NULL, ts FROM mp_requests"
    f" WHERE status = 200 AND rowid % {FEEDBACK_EVERY} = 0"
)


def _batch(
    first: int, count: int, rng: random.Random
) -> tuple[list[RequestRow], list[PredictionRow]]:
    requests: list[RequestRow] = []
    predictions: list[PredictionRow] = []
    for i in range(first, first + count):
        request_id = f"r{i:09d}"
        version = 1 + (i & 1)
        roll = rng.random()
        status = 500 if roll < 0.01 else 422 if roll < 0.02 else 200
        latency = math.exp(rng.gauss(math.log(5.0 + version), 0.4))
        rows = 1 if status == 200 else 0
        error = None if status == 200 else ("Internal Server Error" if status == 500 else "x")
        requests.append(
            (request_id, START + i * GAP_S, MODEL, version, f"v{version}", "classification",
             rows, latency, status, error)
        )  # fmt: skip
        if rows:
            predictions.append((request_id, 0, str(rng.randrange(3)), None))
    return requests, predictions


def fill(store: SqliteStore, n: int, seed: int = 0) -> float:
    """Record ``n`` requests and their feedback; the seconds it took."""
    rng = random.Random(seed)
    began = time.perf_counter()
    for first in range(0, n, BATCH):
        requests, predictions = _batch(first, min(BATCH, n - first), rng)
        store.write(requests, predictions)
    store.execute(_FEEDBACK)  # one statement: a true label on one answered request in 100
    return time.perf_counter() - began


def _timed(store: SqliteStore, experiment: Experiment | None = None) -> tuple[float, int, int]:
    """The seconds one report took, and the requests and feedback rows it counted."""
    began = time.perf_counter()
    report = experiment_report(store, MODEL, experiment=experiment)
    seconds = time.perf_counter() - began
    return (
        seconds,
        sum(v.requests for v in report.variants),
        sum(v.feedback for v in report.variants),
    )


def measure(n: int, folder: Path) -> None:
    path = folder / f"outcomes-{n}.db"
    path.unlink(missing_ok=True)
    store = SqliteStore(path)
    try:
        filled = fill(store, n)
    finally:
        store.close()
    size_mb = path.stat().st_size / 1e6
    store = SqliteStore(path)  # a fresh connection: SQLite's page cache is empty
    try:
        cold, counted, feedback = _timed(store)
        warm, _, _ = _timed(store)
        half = Experiment(
            model=MODEL, name="half", started_at=START + n * GAP_S / 2, stopped_at=None,
            metric=None, traffic=None, events=[],
        )  # fmt: skip
        window, in_window, _ = _timed(store, half)
    finally:
        store.close()
        path.unlink(missing_ok=True)
    print(
        f"N={n:,} requests ({counted:,} counted, {feedback:,} with feedback): "
        f"filled in {filled:.1f} s, {size_mb:.0f} MB; "
        f"report cold {cold:.3f} s, warm {warm:.3f} s; "
        f"window of the newer half ({in_window:,}) {window:.3f} s",
        flush=True,
    )


def main(argv: list[str]) -> None:
    sizes = [int(a.replace("_", "")) for a in argv] or [1_000_000]
    where = os.environ.get("BENCH_DB_DIR")
    with tempfile.TemporaryDirectory(dir=where) as folder:
        for n in sizes:
            measure(n, Path(folder))


if __name__ == "__main__":
    main(sys.argv[1:])
