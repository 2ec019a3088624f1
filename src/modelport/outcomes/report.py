"""An A/B test's report for one model, from the outcome store: per variant, traffic, errors,
latency and the metric measured on feedback; between variants, the difference, its 95 %
confidence interval, a p-value and a verdict (see :mod:`modelport.outcomes.stats`).

The baseline is the variant serving the lowest version; every other variant is compared to it.
The database does the counting (:mod:`.summary`): a report reads a few rows per variant, whatever
the number of records.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from modelport.outcomes.stats import (
    MIN_SAMPLES,
    Comparison,
    compare_means,
    compare_proportions,
    mean_interval,
    proportion_interval,
)
from modelport.outcomes.store import Store
from modelport.outcomes.summary import VariantSummary, summarize

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


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def _comparison(c: Comparison) -> ComparisonReport:
    ci = None if math.isnan(c.ci95[0]) else c.ci95
    return ComparisonReport(
        baseline=c.a, variant=c.b, metric=c.metric, difference=_finite(c.difference),
        ci95=ci, p_value=_finite(c.p_value), verdict=c.verdict,
    )  # fmt: skip


def _variant(name: str, t: VariantSummary, metric: str | None) -> VariantReport:
    accuracy = t.hits / t.feedback if metric == "accuracy" and t.feedback else None
    mae = t.mean_abs_error if metric == "mae" else None
    ci95 = None
    if accuracy is not None:
        ci95 = proportion_interval(t.hits, t.feedback)
    elif mae is not None:
        ci95 = mean_interval(t.valued, mae, t.abs_error_variance)
    return VariantReport(
        variant=name, versions=sorted(t.versions), requests=t.requests, errors=t.errors,
        rejected=t.rejected, latency_ms_p50=t.latency_ms_p50, latency_ms_p99=t.latency_ms_p99,
        feedback=t.feedback, accuracy=accuracy, mae=mae, ci95=ci95,
    )  # fmt: skip


def _compare(
    metric: str | None, a: str, sa: VariantSummary, b: str, sb: VariantSummary, min_samples: int
) -> Comparison | None:
    if metric == "accuracy":
        return compare_proportions(a, sa.hits, sa.feedback, b, sb.hits, sb.feedback, min_samples)
    if metric == "mae":
        return compare_means(
            a, sa.valued, sa.mean_abs_error or 0.0, sa.abs_error_variance,
            b, sb.valued, sb.mean_abs_error or 0.0, sb.abs_error_variance, min_samples,
        )  # fmt: skip
    return None


def experiment_report(store: Store, model: str, min_samples: int = MIN_SAMPLES) -> ExperimentReport:
    """The A/B report of ``model`` from everything recorded in ``store``."""
    variants, metric = summarize(store, model)
    names = sorted(variants, key=lambda v: (min(variants[v].versions, default=1 << 30), v))
    comparisons = []
    for name in names[1:]:
        found = _compare(metric, names[0], variants[names[0]], name, variants[name], min_samples)
        if found is not None:
            comparisons.append(_comparison(found))
    return ExperimentReport(
        model=model, metric=metric, min_samples=min_samples,
        variants=[_variant(n, variants[n], metric) for n in names], comparisons=comparisons,
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
