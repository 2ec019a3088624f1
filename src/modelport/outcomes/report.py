"""An A/B test's report for one model, from the outcome store: per variant, traffic, errors,
latency and the metric measured on feedback; between variants, the difference, its 95 %
confidence interval, a p-value and a verdict (see :mod:`modelport.outcomes.stats`).

The baseline is the variant serving the lowest version; every other variant is compared to it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import BaseModel

from modelport.outcomes.stats import (
    MIN_SAMPLES,
    Comparison,
    compare_errors,
    compare_proportions,
    mean_interval,
    percentile,
    proportion_interval,
)
from modelport.outcomes.store import Store

__all__ = ["ComparisonReport", "ExperimentReport", "VariantReport", "experiment_report"]


class VariantReport(BaseModel):
    variant: str
    versions: list[int]
    requests: int
    errors: int  # answered 5xx
    rejected: int  # answered 4xx: bad input, unknown version, ...
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    feedback: int
    accuracy: float | None = None
    mae: float | None = None
    ci95: tuple[float, float] | None = None  # of accuracy or mae: Wilson's / Student's t


class ComparisonReport(BaseModel):
    baseline: str
    variant: str
    metric: str
    difference: float | None  # variant minus baseline
    ci95: tuple[float, float] | None
    p_value: float | None
    verdict: str


class ExperimentReport(BaseModel):
    model: str
    metric: str | None  # accuracy (classifiers) or mae (regressors)
    min_samples: int
    variants: list[VariantReport]
    comparisons: list[ComparisonReport]
    verdict: str


@dataclass
class _Tally:
    versions: set[int] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    rejected: int = 0
    hits: int = 0
    abs_errors: list[float] = field(default_factory=list)
    feedback: int = 0


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def _comparison(c: Comparison) -> ComparisonReport:
    ci = None if math.isnan(c.ci95[0]) else c.ci95
    return ComparisonReport(
        baseline=c.a, variant=c.b, metric=c.metric, difference=_finite(c.difference),
        ci95=ci, p_value=_finite(c.p_value), verdict=c.verdict,
    )  # fmt: skip


def _tallies(store: Store, model: str) -> tuple[dict[str, _Tally], str | None]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    kinds = set()
    for variant, version, status, latency, kind in store.traffic(model):
        tally = tallies[variant]
        if version is not None:
            tally.versions.add(version)
        tally.latencies.append(latency)
        tally.errors += status >= 500
        tally.rejected += 400 <= status < 500
        if kind:
            kinds.add(kind)
    for variant, label, value, true_label, true_value in store.outcomes(model):
        tally = tallies[variant]
        tally.feedback += 1
        if label is not None:
            tally.hits += label == true_label
        elif value is not None and true_value is not None:
            tally.abs_errors.append(abs(value - true_value))
    kind = kinds.pop() if len(kinds) == 1 else None
    metric = {"classification": "accuracy", "regression": "mae"}.get(kind or "")
    return dict(tallies), metric


def _variant(name: str, t: _Tally, metric: str | None) -> VariantReport:
    accuracy = t.hits / t.feedback if metric == "accuracy" and t.feedback else None
    mae = sum(t.abs_errors) / len(t.abs_errors) if metric == "mae" and t.abs_errors else None
    ci95 = None
    if accuracy is not None:
        ci95 = proportion_interval(t.hits, t.feedback)
    elif mae is not None:
        ci95 = mean_interval(t.abs_errors)
    return VariantReport(
        variant=name, versions=sorted(t.versions), requests=len(t.latencies), errors=t.errors,
        rejected=t.rejected, latency_ms_p50=percentile(t.latencies, 50),
        latency_ms_p99=percentile(t.latencies, 99), feedback=t.feedback, accuracy=accuracy, mae=mae,
        ci95=ci95,
    )  # fmt: skip


def experiment_report(store: Store, model: str, min_samples: int = MIN_SAMPLES) -> ExperimentReport:
    """The A/B report of ``model`` from everything recorded in ``store``."""
    tallies, metric = _tallies(store, model)
    names = sorted(tallies, key=lambda v: (min(tallies[v].versions, default=1 << 30), v))
    comparisons = []
    for name in names[1:]:
        a, b = tallies[names[0]], tallies[name]
        if metric == "accuracy":
            c = compare_proportions(
                names[0], a.hits, a.feedback, name, b.hits, b.feedback, min_samples
            )
        elif metric == "mae":
            c = compare_errors(names[0], a.abs_errors, name, b.abs_errors, min_samples)
        else:
            continue
        comparisons.append(_comparison(c))
    return ExperimentReport(
        model=model, metric=metric, min_samples=min_samples,
        variants=[_variant(n, tallies[n], metric) for n in names], comparisons=comparisons,
        verdict=_overall(names, comparisons),
    )  # fmt: skip


def _overall(names: list[str], comparisons: list[ComparisonReport]) -> str:
    if not names:
        return "no predictions recorded yet"
    if len(names) == 1:
        return f"only {names[0]} has served: nothing to compare yet"
    if not comparisons:
        return "not enough data yet (no feedback)"
    if len(comparisons) == 1:
        return comparisons[0].verdict
    return "; ".join(f"{c.variant} vs {c.baseline}: {c.verdict}" for c in comparisons)
