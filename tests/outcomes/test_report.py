"""The experiment report is counted by the database: the same numbers as the former in-Python
report (kept here as the oracle), and a memory cost that does not grow with the records."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from modelport.core.result import InferenceResult
from modelport.outcomes.experiments import Experiment, Metric
from modelport.outcomes.report import ComparisonReport, ExperimentReport, experiment_report
from modelport.outcomes.sequential import sequential_means
from modelport.outcomes.stats import (
    MIN_SAMPLES,
    Comparison,
    compare_errors,
    compare_means,
    compare_proportions,
    lerp,
    percentile,
    proportion_interval,
)
from modelport.outcomes.store import Store
from modelport.runtimes import Outputs
from tests.outcomes.helpers import REGRESSOR, outcomes, pending, traffic, write

ROOT = Path(__file__).resolve().parents[2]


def oracle(
    store: Store, model: str, min_samples: int = MIN_SAMPLES, metric: str | None = None
) -> dict[str, Any]:
    """The report as modelport computed it before: every row read into Python lists; ``metric``
    as an experiment chooses it."""
    tallies: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "versions": set(),
            "lat": [],
            "ok": [],
            "err": 0,
            "rej": 0,
            "hits": 0,
            "abs": [],
            "fb": 0,
            "lab": 0,
            "vals": [],
        }
    )
    kinds = set()
    for variant, version, status, latency, kind in traffic(store, model):
        t = tallies[variant]
        if version is not None:
            t["versions"].add(version)
        t["lat"].append(latency)
        if status < 400:
            t["ok"].append(latency)  # the latency guardrail's samples
        t["err"] += status >= 500
        t["rej"] += 400 <= status < 500
        if kind:
            kinds.add(kind)
    for variant, label, value, true_label, true_value in outcomes(store, model):
        t = tallies[variant]
        t["fb"] += 1
        t["lab"] += true_label is not None
        if true_value is not None:
            t["vals"].append(true_value)
        if label is not None:
            t["hits"] += label == true_label
        elif value is not None and true_value is not None:
            t["abs"].append(abs(value - true_value))
    metric = metric or {"classification": "accuracy", "regression": "mae"}.get(
        kinds.pop() if len(kinds) == 1 else ""
    )
    names = sorted(tallies, key=lambda v: (min(tallies[v]["versions"], default=1 << 30), v))
    variants = [
        {
            "variant": n, "versions": sorted(t["versions"]), "requests": len(t["lat"]),
            "errors": t["err"], "rejected": t["rej"], "feedback": t["fb"],
            "latency_ms_p50": percentile(t["lat"], 50), "latency_ms_p99": percentile(t["lat"], 99),
            "accuracy": t["hits"] / t["lab"] if metric == "accuracy" and t["lab"] else None,
            "mae": sum(t["abs"]) / len(t["abs"]) if metric == "mae" and t["abs"] else None,
            "value": float(np.mean(t["vals"])) if metric == "value" and t["vals"] else None,
            "value_feedback": len(t["vals"]), "vals": t["vals"] if metric == "value" else [],
            "abs": t["abs"] if metric == "mae" else [], "hits": t["hits"], "ok": t["ok"],
            "lab": t["lab"],
            "latency_ms_mean": float(np.mean(t["ok"])) if t["ok"] else None,
        }
        for n, t in ((n, tallies[n]) for n in names)
    ]  # fmt: skip
    comparisons = []
    for name in names[1:]:
        a, b = tallies[names[0]], tallies[name]
        if metric == "accuracy":
            c = compare_proportions(
                names[0], a["hits"], a["lab"], name, b["hits"], b["lab"], min_samples
            )
        elif metric == "value":
            c = _compare_values(names[0], a["vals"], name, b["vals"], min_samples)
        else:
            c = compare_errors(names[0], a["abs"], name, b["abs"], min_samples)
        comparisons.append(c)
    return {"metric": metric, "variants": variants, "comparisons": comparisons}


def _compare_values(
    a: str, values_a: list[float], b: str, values_b: list[float], min_samples: int
) -> Comparison:
    """Welch's comparison of two lists of values, higher is better (numpy's mean and variance)."""
    n_a, n_b = len(values_a), len(values_b)
    mean_a = float(np.mean(values_a)) if n_a else math.nan
    mean_b = float(np.mean(values_b)) if n_b else math.nan
    var_a = float(np.var(values_a, ddof=1)) if n_a > 1 else 0.0
    var_b = float(np.var(values_b, ddof=1)) if n_b > 1 else 0.0
    return compare_means(a, n_a, mean_a, var_a, b, n_b, mean_b, var_b, min_samples, "value")


def _interval(
    errors: list[float], accuracy: float | None, hits: int, feedback: int, floor: bool = True
) -> tuple[float, float] | None:
    """A variant's 95 % interval, from every row: Wilson's for an accuracy (the stats module's),
    scipy's Student t for a mean (of absolute errors: never below 0)."""
    if accuracy is not None:
        return proportion_interval(hits, feedback)
    if len(errors) < 2:
        return None
    low, high = stats.t.interval(
        0.95, len(errors) - 1, loc=np.mean(errors), scale=stats.sem(errors)
    )
    return (max(0.0, float(low)) if floor else float(low), float(high))


def _same(got: float | None, expected: float) -> bool:
    if got is None:
        return bool(np.isnan(expected))
    return got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def assert_matches_oracle(
    store: Store, model: str, min_samples: int = MIN_SAMPLES, metric: Metric | None = None
) -> ExperimentReport:
    """The report from the database equals the oracle's; ``metric``: an experiment over
    everything recorded, with that metric."""
    everything = Experiment(
        model=model, name="all", started_at=0.0, stopped_at=None, metric=metric, traffic=None,
        events=[],
    )  # fmt: skip
    report = experiment_report(store, model, min_samples, everything if metric else None)
    expected = oracle(store, model, min_samples, metric)
    assert report.metric == expected["metric"]
    got = [v.model_dump() for v in report.variants]
    latencies: list[list[float]] = []
    for g, e in zip(got, expected["variants"], strict=True):
        mae, e_mae = g.pop("mae"), e.pop("mae")
        value, e_value = g.pop("value"), e.pop("value")
        assert value == (None if e_value is None else pytest.approx(e_value, rel=1e-12))
        ci = g.pop("ci95")
        if metric == "value":
            e_ci = _interval(e.pop("vals"), None, 0, 0, floor=False)
            e.pop("abs")
        else:
            e_ci = _interval(e.pop("abs"), e["accuracy"], e["hits"], e.pop("lab"))
            e.pop("vals")
        e.pop("hits")
        e.pop("lab", None)
        latencies.append(e.pop("ok"))
        mean, e_mean = g.pop("latency_ms_mean"), e.pop("latency_ms_mean")
        assert mean == (None if e_mean is None else pytest.approx(e_mean, rel=1e-12))
        assert g == e  # counts, versions and both percentiles exactly numpy's
        assert mae == (None if e_mae is None else pytest.approx(e_mae, rel=1e-12))
        assert ci == (None if e_ci is None else pytest.approx(e_ci, rel=1e-9))
    assert len(report.comparisons) == len(expected["comparisons"])
    for c, e in zip(report.comparisons, expected["comparisons"], strict=True):
        assert (c.baseline, c.variant) == (e.a, e.b)
        if np.isnan(e.difference):  # too early: the same verdict, no always-valid p-value
            assert (c.verdict, c.always_valid_p_value) == (e.verdict, None)
        else:  # the verdict follows the always-valid p-value, never below the fixed one
            assert c.always_valid_p_value is not None
            assert c.always_valid_p_value >= e.p_value
            assert "always-valid p" in c.verdict
        assert _same(c.difference, e.difference)
        _assert_guardrail(
            c,
            latencies[0],
            latencies[[v.variant for v in report.variants].index(c.variant)],
            min_samples,
        )
        assert _same(c.p_value, e.p_value)
        assert _same(None if c.ci95 is None else c.ci95[0], e.ci95[0])
        assert c.metric == expected["metric"]
    return report


def _assert_guardrail(
    c: ComparisonReport, baseline: list[float], variant: list[float], min_samples: int
) -> None:
    """The latency guardrail from the database equals numpy's mean and variance of every
    answered request's latency, put through the same mSPRT."""
    if min(len(baseline), len(variant)) < max(min_samples, 2):
        assert c.latency is None
        return
    assert c.latency is not None
    assert c.latency.baseline_mean == pytest.approx(np.mean(baseline), rel=1e-12)
    assert c.latency.variant_mean == pytest.approx(np.mean(variant), rel=1e-12)
    seq = sequential_means(
        len(baseline), float(np.mean(baseline)), float(np.var(baseline, ddof=1)),
        len(variant), float(np.mean(variant)), float(np.var(variant, ddof=1)),
    )  # fmt: skip
    assert c.latency.always_valid_p_value == pytest.approx(seq.p_value, rel=1e-9)


def test_lerp_is_numpys_percentile() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 10, 101, 1000):
        values = np.sort(rng.exponential(2.0, n))
        for q in (0, 1, 25, 50, 90, 99, 99.9, 100):
            rank = (n - 1) * (q / 100)
            below = int(np.floor(rank))
            above = min(below + 1, n - 1)
            got = lerp(float(values[below]), float(values[above]), rank - below)
            assert got == float(np.percentile(values, q))  # bit for bit


def _classifier_records(rng: np.random.Generator) -> list[Any]:
    records = []
    plan = [("v1", 1, 180), ("v2", 2, 170), ("canary", 3, 60), ("canary", 4, 25)]
    for variant, version, n in plan:
        for i in range(n):
            status = int(rng.choice([200] * 18 + [422, 500]))
            labels = [str(rng.choice(["yes", "no"])) for _ in range(1 + i % 3)]
            records.append(
                pending(f"c-{variant}-{version}-{i}", labels, status, model="c", version=version,
                        variant=variant, latency_ms=float(rng.gamma(2.0, 3.0)))
            )  # fmt: skip
    return records


def test_classifier_report_equals_the_in_python_report(store: Store) -> None:
    rng = np.random.default_rng(1)
    records = _classifier_records(rng)
    write(store, records)
    for record in records[::2]:
        if record[6] < 400:
            row = int(rng.integers(0, 3)) if record[0].endswith("0") else 0
            store.put_feedback(record[0], row, str(rng.choice(["yes", "no"])), None)
    assert_matches_oracle(store, "c")
    assert_matches_oracle(store, "c", min_samples=5)
    assert_matches_oracle(store, "nothing")


def test_regressor_report_equals_the_in_python_report(store: Store) -> None:
    rng = np.random.default_rng(2)
    for variant, version, scale in [("v1", 1, 1.0), ("v2", 2, 1.3)]:
        records = []
        for i in range(120):
            values = rng.normal(50.0, 10.0, 1 + i % 2)
            result = InferenceResult("r", version, REGRESSOR, Outputs(values))
            records.append(
                pending(f"r-{variant}-{i}", result=result, model="r", version=version,
                        variant=variant, latency_ms=float(rng.uniform(0.1, 9.0)))
            )  # fmt: skip
        write(store, records)
        for i in range(0, 120, 1 + (variant == "v2")):
            truth = float(rng.normal(50.0, 10.0 * scale))
            store.put_feedback(f"r-{variant}-{i}", 0, None, truth)
    assert_matches_oracle(store, "r")
    assert_matches_oracle(store, "r", min_samples=200)  # not enough data yet


FILL = [
    "INSERT INTO mp_requests (request_id, ts, model, version, variant, kind, n_rows, latency_ms,"
    " status, error) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " SELECT 'r' || CAST(i AS TEXT), 1000.0 + i, 'big', 1 + i % 2, 'v' || CAST(1 + i % 2 AS TEXT),"
    " 'classification', 1, (i % 997) * 0.013, CASE WHEN i % 101 = 0 THEN 500 ELSE 200 END, NULL"
    " FROM n",
    "INSERT INTO mp_predictions (request_id, row_index, label, value)"
    " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " SELECT 'r' || CAST(i AS TEXT), 0, CASE WHEN i % 3 = 0 THEN 'yes' ELSE 'no' END, NULL FROM n",
    "INSERT INTO mp_feedback (request_id, row_index, label, value, ts)"
    " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 10 FROM n WHERE i < ?)"
    " SELECT 'r' || CAST(i AS TEXT), 0, CASE WHEN i % 7 = 0 THEN 'yes' ELSE 'no' END, NULL, 1.0"
    " FROM n",
]

MEASURE = """
import json, resource, sys, time, tracemalloc
from pathlib import Path
from modelport.outcomes.backends import open_store
from modelport.outcomes.report import ComparisonReport, experiment_report
from modelport.outcomes.sequential import sequential_means
from tests.outcomes.test_report import oracle
url, path, which = sys.argv[1] or None, Path(sys.argv[2]), sys.argv[3]
store = open_store(url, path)
oracle(store, "warm"), experiment_report(store, "warm")  # imports (scipy) and caches
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if which == "python":  # Python's allocations, traced: the same whatever else the machine does
    tracemalloc.start()
report = oracle(store, "big") if which == "python" else experiment_report(store, "big")
seconds = time.perf_counter() - started
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # SQLite's too
if which == "python":
    grown = tracemalloc.get_traced_memory()[1] // 1024
requests = report["variants"][0]["requests"] if which == "python" else report.variants[0].requests
print(json.dumps({"grown_kib": grown, "seconds": seconds, "requests": requests}))
"""


def _measure(backend: dict[str, Any], which: str) -> dict[str, Any]:
    args = [str(backend.get("outcomes_url") or ""), str(backend.get("outcomes_db") or ""), which]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *args], cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    measured: dict[str, Any] = json.loads(done.stdout)
    return measured


def test_report_memory_does_not_grow_with_the_records(
    store: Store, backend: dict[str, Any]
) -> None:
    """300,000 requests (30,000 with feedback): the report grows the process (resident memory,
    SQLite's included) by a few MB, where the in-Python report allocated about 250 bytes a
    record; the second measure shows the first one would see that."""
    rows = 300_000
    with store._transaction() as cursor:
        for statement in FILL:
            modulo = "%%" if store.placeholder == "%s" else "%"  # psycopg's escape
            cursor.execute(store._sql(statement.replace("%", modulo)), (rows,))
    write(store, [pending(f"w{i}", ["yes"], model="warm", variant=f"v{1 + i % 2}",
                          version=1 + i % 2) for i in range(80)])  # fmt: skip
    for i in range(80):
        store.put_feedback(f"w{i}", 0, "yes", None)
    sql = _measure(backend, "sql")
    assert sql["requests"] == rows // 2
    assert sql["grown_kib"] < 12 * 1024, sql
    in_python = _measure(backend, "python")
    assert in_python["requests"] == rows // 2
    assert in_python["grown_kib"] > 40 * 1024, in_python


def test_classifier_value_report_equals_the_in_python_report(store: Store) -> None:
    """A classifier's business value sent with feedback (beside the label, after it, or instead
    of it): the database's count, mean and variance per variant give the oracle's numbers, the
    verdict is about ``value`` (higher is better), and the accuracy counts only labelled rows."""
    rng = np.random.default_rng(3)
    records = _classifier_records(rng)
    write(store, records)
    answered = [r for r in records if r[6] < 400]
    for i, record in enumerate(answered):
        lift = {"v1": 0.0, "v2": 25.0}.get(record[4], 5.0)
        value = float(rng.normal(lift - 2.0, 30.0))  # revenue, refunds (negative) included
        if i % 4 == 0:  # the label now, the value later: the second keeps the first
            store.put_feedback(record[0], 0, str(rng.choice(["yes", "no"])), None)
            assert store.put_feedback(record[0], 0, None, value)
        elif i % 4 == 1:
            store.put_feedback(record[0], 0, None, value)  # a value alone
        elif i % 4 == 2:
            store.put_feedback(record[0], 0, str(rng.choice(["yes", "no"])), value)
        else:
            store.put_feedback(record[0], 0, str(rng.choice(["yes", "no"])), None)  # a label
    rows = outcomes(store, "c")
    assert sum(label is not None for *_, label, _ in rows) == len(answered) - len(answered) // 4
    report = assert_matches_oracle(store, "c", metric="value")
    assert report.verdict_metric == "value"
    v2 = next(c for c in report.comparisons if c.variant == "v2")
    assert v2.difference is not None
    assert v2.difference > 0
    assert v2.always_valid_p_value is not None
    assert v2.always_valid_p_value < 0.05
    assert v2.verdict.startswith("v2 better, always-valid p")
    assert v2.power is None  # a winner: nothing more to detect
    canary = next(c for c in report.comparisons if c.variant == "canary")
    assert canary.power is not None  # no winner yet: what it could detect
    assert min(v.ci95[0] for v in report.variants if v.ci95) < 0  # no floor at 0 for values
    assert_matches_oracle(store, "c", min_samples=5, metric="value")
    assert_matches_oracle(store, "c")  # accuracy: over the labelled rows only
