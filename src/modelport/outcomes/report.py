"""An A/B test's report for one model, from the outcome store: per variant, traffic, errors,
latency and the metric measured on feedback; between variants, the difference, its 95 %
confidence interval and p-value of a fixed-horizon test (:mod:`modelport.outcomes.stats`), and an
always-valid p-value and confidence sequence that stay true however often the report is read
(:mod:`modelport.outcomes.sequential`); the verdict follows the always-valid one. With an
experiment (:mod:`.experiments`), the report covers only its window, and checks the sample ratio
against its traffic policy: a mismatch (p < 0.001) stops the verdict.

The baseline is the variant serving the lowest version; every other variant is compared to it.
The database does the counting (:mod:`.summary`): a report reads a few rows per variant, whatever
the number of records.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from modelport.outcomes.experiments import Experiment
from modelport.outcomes.sequential import (
    TAU,
    Sequential,
    sample_ratio,
    sequential_means,
    sequential_proportions,
)
from modelport.outcomes.stats import (
    MIN_SAMPLES,
    Comparison,
    compare_means,
    compare_proportions,
    mean_interval,
    proportion_interval,
    verdict,
)
from modelport.outcomes.store import Store
from modelport.outcomes.summary import VariantSummary, summarize

__all__ = [
    "ComparisonReport",
    "ExperimentReport",
    "SampleRatioReport",
    "VariantReport",
    "experiment_report",
]

MISMATCH = "sample ratio mismatch: results not trustworthy"


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
    p_value: float | None  # fixed-horizon: valid only if read once, at a sample size fixed ahead
    always_valid_p_value: float | None  # mSPRT: valid however often it is read
    confidence_sequence: tuple[float, float] | None  # 95 %, valid at every read
    verdict: str  # from the always-valid p-value


class SampleRatioReport(BaseModel):
    """Requests per variant against the shares the experiment's policy configured."""

    p_value: float
    expected: dict[str, float]
    observed: dict[str, int]
    mismatch: bool  # p < 0.001: the split did not deliver what it promised


class ExperimentReport(BaseModel):
    model: str
    metric: str | None  # accuracy (classifiers) or mae (regressors)
    min_samples: int
    tau: float  # the mSPRT's mixing standard deviation, in standard deviations of one observation
    experiment: Experiment | None = None  # the window reported on; None: everything recorded
    variants: list[VariantReport]
    comparisons: list[ComparisonReport]
    srm: SampleRatioReport | None = None  # with an experiment whose policy splits traffic
    verdict: str


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def _comparison(c: Comparison, seq: Sequential | None) -> ComparisonReport:
    ci = None if math.isnan(c.ci95[0]) else c.ci95
    text = c.verdict
    if seq is not None and not math.isnan(c.difference):
        higher = c.metric == "accuracy"
        text = verdict(
            c.a, c.b, c.difference, seq.p_value, higher_is_better=higher, label="always-valid p"
        )
    return ComparisonReport(
        baseline=c.a, variant=c.b, metric=c.metric, difference=_finite(c.difference),
        ci95=ci, p_value=_finite(c.p_value),
        always_valid_p_value=None if seq is None else seq.p_value,
        confidence_sequence=None if seq is None else seq.sequence, verdict=text,
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
    metric: str | None, a: str, sa: VariantSummary, b: str, sb: VariantSummary, min_samples: int,
    tau: float,
) -> ComparisonReport | None:  # fmt: skip
    if metric == "accuracy":
        c = compare_proportions(a, sa.hits, sa.feedback, b, sb.hits, sb.feedback, min_samples)
        if math.isnan(c.difference):
            return _comparison(c, None)
        return _comparison(
            c, sequential_proportions(sa.hits, sa.feedback, sb.hits, sb.feedback, tau)
        )
    if metric == "mae":
        mean_a, mean_b = sa.mean_abs_error or 0.0, sb.mean_abs_error or 0.0
        var_a, var_b = sa.abs_error_variance, sb.abs_error_variance
        c = compare_means(a, sa.valued, mean_a, var_a, b, sb.valued, mean_b, var_b, min_samples)
        if math.isnan(c.difference):
            return _comparison(c, None)
        seq = sequential_means(sa.valued, mean_a, var_a, sb.valued, mean_b, var_b, tau)
        return _comparison(c, seq)
    return None


def _srm(
    experiment: Experiment | None, variants: dict[str, VariantSummary]
) -> SampleRatioReport | None:
    """The sample-ratio check of an experiment whose policy splits traffic."""
    if experiment is None or experiment.traffic is None:
        return None
    weights = experiment.traffic.shares()
    observed = {name: v.requests for name, v in variants.items()}
    found = sample_ratio(observed, weights)
    if found is None:
        return None
    return SampleRatioReport(
        p_value=found.p_value, expected=found.expected, observed=found.observed,
        mismatch=found.mismatch,
    )  # fmt: skip


def experiment_report(
    store: Store,
    model: str,
    min_samples: int = MIN_SAMPLES,
    experiment: Experiment | None = None,
    tau: float = TAU,
) -> ExperimentReport:
    """The A/B report of ``model``: over ``experiment``'s window, or everything recorded."""
    window = None if experiment is None else (experiment.started_at, experiment.stopped_at)
    variants, metric = summarize(store, model, window)
    if experiment is not None and experiment.metric is not None:
        metric = experiment.metric
    names = sorted(variants, key=lambda v: (min(variants[v].versions, default=1 << 30), v))
    comparisons = []
    for name in names[1:]:
        found = _compare(
            metric, names[0], variants[names[0]], name, variants[name], min_samples, tau
        )
        if found is not None:
            comparisons.append(found)
    srm = _srm(experiment, variants)
    overall = MISMATCH if srm is not None and srm.mismatch else _overall(names, comparisons)
    return ExperimentReport(
        model=model, metric=metric, min_samples=min_samples, tau=tau, experiment=experiment,
        variants=[_variant(n, variants[n], metric) for n in names], comparisons=comparisons,
        srm=srm, verdict=overall,
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
