"""An A/B test's report for one model, from the outcome store: per variant, traffic, errors,
latency and the metric measured on feedback; between variants, the difference, its 95 %
confidence interval and p-value of a fixed-horizon test (:mod:`modelport.outcomes.stats`), and an
always-valid p-value and confidence sequence that stay true however often the report is read
(:mod:`modelport.outcomes.sequential`); the verdict follows the always-valid one. With an
experiment (:mod:`.experiments`), the report covers only its window, and checks the sample ratio
against its traffic policy: a mismatch (p < 0.001) stops the verdict.

Each comparison also carries the latency guardrail (:mod:`.guardrail`): a variant that wins on
the metric but is clearly slower is not declared the winner, and the verdict says why;
``verdict_metric`` names the metric the verdict is about (``accuracy``, ``mae``, ``value`` or
``latency_ms``). While a comparison has no winner, its ``power`` says what difference the
always-valid verdict can detect at the current sample sizes and how many samples per variant
the observed difference needs (:mod:`.power`).

An experiment's metric ``value`` compares the mean ``value`` sent with ``/feedback`` (a
classifier's business value: revenue, or 1/0 converted; :mod:`.feedback`), higher is better, with
the statistics of a mean (Welch's test and interval, the mSPRT for means, the power estimate).

The baseline is the variant serving the lowest version; every other variant is compared to it.
The database does the counting (:mod:`.summary`): a report reads a few rows per variant, whatever
the number of records.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pydantic import BaseModel

from modelport.outcomes.experiments import Experiment
from modelport.outcomes.guardrail import LATENCY, GuardrailReport, latency_guardrail
from modelport.outcomes.power import power
from modelport.outcomes.sequential import (
    TAU,
    Sequential,
    sample_ratio,
    sequential_means,
    sequential_proportions,
)
from modelport.outcomes.stats import (
    ALPHA,
    HIGHER_IS_BETTER,
    MIN_SAMPLES,
    Comparison,
    compare_means,
    compare_proportions,
    mean_interval,
    p_text,
    proportion_interval,
    verdict,
)
from modelport.outcomes.store import Store
from modelport.outcomes.summary import VariantSummary, summarize

__all__ = [
    "ComparisonReport",
    "ExperimentReport",
    "PowerReport",
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
    latency_ms_mean: float | None = None  # of the requests answered below 400 (the guardrail's)
    feedback: int
    accuracy: float | None = None
    mae: float | None = None
    value: float | None = None  # the mean value sent with feedback (metric ``value``)
    value_feedback: int = 0  # feedback rows that sent a value
    ci95: tuple[float, float] | None = None  # of the metric: Wilson's, or Student's t for a mean


class PowerReport(BaseModel):
    """What the comparison can detect now (shown while it has no winner)."""

    alpha: float
    power: float
    mde: float  # smallest true difference the always-valid verdict detects now, with `power`
    mde_fixed_horizon: float  # the same for a test read once, at these sample sizes
    samples_needed: int | None  # per variant, for the always-valid verdict to detect `effect`
    effect: float | None  # the observed difference (None: none observed yet)


class ComparisonReport(BaseModel):
    baseline: str
    variant: str
    metric: str
    difference: float | None  # variant minus baseline
    ci95: tuple[float, float] | None
    p_value: float | None  # fixed-horizon: valid only if read once, at a sample size fixed ahead
    always_valid_p_value: float | None  # mSPRT: valid however often it is read
    confidence_sequence: tuple[float, float] | None  # 95 %, valid at every read
    verdict: str  # from the always-valid p-value, and the latency guardrail
    verdict_metric: str  # what the verdict is about: the metric, or latency_ms (the guardrail)
    latency: GuardrailReport | None = None  # None below min_samples answered requests
    power: PowerReport | None = None  # None once there is a winner, or without variance


class SampleRatioReport(BaseModel):
    """Requests per variant against the shares the experiment's policy configured."""

    p_value: float
    expected: dict[str, float]
    observed: dict[str, int]
    mismatch: bool  # p < 0.001: the split did not deliver what it promised


class ExperimentReport(BaseModel):
    model: str
    metric: str | None  # accuracy (classifiers), mae (regressors), or value (the experiment's)
    min_samples: int
    tau: float  # the mSPRT's mixing standard deviation, in standard deviations of one observation
    experiment: Experiment | None = None  # the window reported on; None: everything recorded
    variants: list[VariantReport]
    comparisons: list[ComparisonReport]
    srm: SampleRatioReport | None = None  # with an experiment whose policy splits traffic
    verdict: str
    verdict_metric: str | None = None  # what the verdict is about; None: nothing compared


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


@dataclass(frozen=True, slots=True)
class _Primary:
    """A comparison on the experiment's metric, with what its power estimate needs."""

    fixed: Comparison
    seq: Sequential | None  # None: too early
    sigma2: float  # pooled per-observation variance
    n_a: int
    n_b: int

    def winner(self) -> str | None:
        c = self.fixed
        if self.seq is None or math.isnan(c.difference) or c.difference == 0:
            return None
        if self.seq.p_value >= ALPHA:
            return None
        return c.b if (c.difference > 0) == (c.metric in HIGHER_IS_BETTER) else c.a


def _comparison(primary: _Primary, guard: GuardrailReport | None, tau: float) -> ComparisonReport:
    c, seq = primary.fixed, primary.seq
    ci = None if math.isnan(c.ci95[0]) else c.ci95
    text, about = c.verdict, c.metric
    if seq is not None and not math.isnan(c.difference):
        higher = c.metric in HIGHER_IS_BETTER
        text = verdict(
            c.a, c.b, c.difference, seq.p_value, higher_is_better=higher, label="always-valid p"
        )
    winner = primary.winner()
    if guard is not None and guard.breached:
        slower = (
            f"slower on {LATENCY} ({guard.difference:+.2f} ms, "
            f"{p_text(guard.always_valid_p_value, 'always-valid p')})"
        )
        if winner == c.b and seq is not None:  # the guardrail overturns the metric's winner
            won = p_text(seq.p_value, "always-valid p")
            text = f"no winner: {c.b} better on {c.metric}, {won}, but {slower}"
            about = LATENCY
        else:  # the verdict stays the metric's, with the guardrail's warning
            text = f"{text}; {c.b} {slower}"
    return ComparisonReport(
        baseline=c.a, variant=c.b, metric=c.metric, difference=_finite(c.difference),
        ci95=ci, p_value=_finite(c.p_value),
        always_valid_p_value=None if seq is None else seq.p_value,
        confidence_sequence=None if seq is None else seq.sequence, verdict=text,
        verdict_metric=about, latency=guard,
        power=None if winner is not None else _power(primary, tau),
    )  # fmt: skip


def _power(primary: _Primary, tau: float) -> PowerReport | None:
    difference = primary.fixed.difference
    effect = None if math.isnan(difference) or difference == 0 else difference
    found = power(primary.sigma2, primary.n_a, primary.n_b, tau, effect)
    return None if found is None else PowerReport(**dataclasses.asdict(found))


def _variant(name: str, t: VariantSummary, metric: str | None) -> VariantReport:
    accuracy = t.hits / t.labelled if metric == "accuracy" and t.labelled else None
    mae = t.mean_abs_error if metric == "mae" else None
    value = t.value_mean if metric == "value" else None
    ci95 = None
    if accuracy is not None:
        ci95 = proportion_interval(t.hits, t.labelled)
    elif mae is not None:
        ci95 = mean_interval(t.valued, mae, t.abs_error_variance)
    elif value is not None:
        ci95 = mean_interval(t.values, value, t.value_variance, floor=None)
    return VariantReport(
        variant=name, versions=sorted(t.versions), requests=t.requests, errors=t.errors,
        rejected=t.rejected, latency_ms_p50=t.latency_ms_p50, latency_ms_p99=t.latency_ms_p99,
        latency_ms_mean=t.latency_ms_mean, feedback=t.feedback, accuracy=accuracy, mae=mae,
        value=value, value_feedback=t.values, ci95=ci95,
    )  # fmt: skip


def _primary(
    metric: str | None, a: str, sa: VariantSummary, b: str, sb: VariantSummary, min_samples: int,
    tau: float,
) -> _Primary | None:  # fmt: skip
    if metric == "accuracy":
        n_a, n_b = sa.labelled, sb.labelled
        c = compare_proportions(a, sa.hits, n_a, b, sb.hits, n_b, min_samples)
        pooled = (sa.hits + sb.hits) / max(n_a + n_b, 1)
        seq = None
        if not math.isnan(c.difference):
            seq = sequential_proportions(sa.hits, n_a, sb.hits, n_b, tau)
        return _Primary(c, seq, pooled * (1 - pooled), n_a, n_b)
    if metric == "mae":
        return _means(
            metric, a, (sa.valued, sa.mean_abs_error, sa.abs_error_variance),
            b, (sb.valued, sb.mean_abs_error, sb.abs_error_variance), min_samples, tau,
        )  # fmt: skip
    if metric == "value":
        return _means(
            metric, a, (sa.values, sa.value_mean, sa.value_variance),
            b, (sb.values, sb.value_mean, sb.value_variance), min_samples, tau,
        )  # fmt: skip
    return None


def _means(
    metric: str, a: str, side_a: tuple[int, float | None, float], b: str,
    side_b: tuple[int, float | None, float], min_samples: int, tau: float,
) -> _Primary:  # fmt: skip
    """Two means (absolute errors, values), each side as ``(count, mean, sample variance)``."""
    (n_a, mean_a, var_a), (n_b, mean_b, var_b) = side_a, side_b
    m_a, m_b = mean_a or 0.0, mean_b or 0.0
    c = compare_means(a, n_a, m_a, var_a, b, n_b, m_b, var_b, min_samples, metric)
    seq = None
    if not math.isnan(c.difference):
        seq = sequential_means(n_a, m_a, var_a, n_b, m_b, var_b, tau)
    pooled = (max(n_a - 1, 0) * var_a + max(n_b - 1, 0) * var_b) / max(n_a + n_b - 2, 1)
    return _Primary(c, seq, pooled, n_a, n_b)


def _compare(
    metric: str | None, a: str, sa: VariantSummary, b: str, sb: VariantSummary, min_samples: int,
    tau: float,
) -> ComparisonReport | None:  # fmt: skip
    primary = _primary(metric, a, sa, b, sb, min_samples, tau)
    if primary is None:
        return None
    return _comparison(primary, latency_guardrail(sa, sb, min_samples, tau), tau)


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
    chosen = None if experiment is None else experiment.metric
    variants, metric = summarize(store, model, window, chosen)
    names = sorted(variants, key=lambda v: (min(variants[v].versions, default=1 << 30), v))
    comparisons = []
    for name in names[1:]:
        found = _compare(
            metric, names[0], variants[names[0]], name, variants[name], min_samples, tau
        )
        if found is not None:
            comparisons.append(found)
    srm = _srm(experiment, variants)
    mismatch = srm is not None and srm.mismatch
    overall = MISMATCH if mismatch else _overall(names, comparisons)
    about = {c.verdict_metric for c in comparisons}
    return ExperimentReport(
        model=model, metric=metric, min_samples=min_samples, tau=tau, experiment=experiment,
        variants=[_variant(n, variants[n], metric) for n in names], comparisons=comparisons,
        srm=srm, verdict=overall,
        verdict_metric=about.pop() if len(about) == 1 and not mismatch else None,
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
