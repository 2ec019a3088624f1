"""Statistics that stay valid when an experiment is watched: always-valid p-values, confidence
sequences, and the sample-ratio mismatch check. Pure functions over plain numbers.

**mSPRT** (the mixture sequential probability ratio test of Johari, Pekelis and Walsh, "Always
valid inference", 2017/2022). With ``d`` the observed difference of two means (or proportions),
``V`` its variance and a normal mixing distribution ``N(0, tau2)`` over the true difference, the
mixture likelihood ratio against "no difference" is::

    L = sqrt(V / (V + tau2)) * exp(d**2 * tau2 / (2 * V * (V + tau2)))

``L`` is a martingale under the null, so (Ville's inequality) the chance that ``1 / L`` *ever*
drops below ``alpha``, however often it is looked at, is at most ``alpha``: ``min(1, 1 / L)`` is
an always-valid p-value. (The paper's p-value is the running minimum of this over time; a report
does not keep that history, and the current value is never smaller, so it is at least as
conservative.) Inverting the test gives the confidence sequence ``d +- half``::

    half = sqrt(V * (V + tau2) / tau2 * (2 * log(1 / alpha) + log((V + tau2) / V)))

``tau`` is given in standard deviations of one observation (a standardized effect size): the
mixing variance is ``tau**2 * sigma2`` with ``sigma2`` the pooled per-observation variance, so one
setting suits accuracies and absolute errors alike (``MODELPORT_OUTCOMES_TAU``). The test is most
sensitive to effects of about that size; 0.3 is the default: a smaller one gains a little power on
small effects with many samples, and loses much on larger effects with few.

**Sample-ratio mismatch**: Pearson's chi-square test of the requests each variant received against
the shares its traffic policy configured; below :data:`SRM_ALPHA` (0.001, the industry's usual
threshold) the split did not deliver what it promised and the comparison is not trustworthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelport.outcomes.stats import ALPHA

__all__ = [
    "SRM_ALPHA",
    "TAU",
    "SampleRatio",
    "Sequential",
    "msprt",
    "sample_ratio",
    "sequential_means",
    "sequential_proportions",
]

TAU = 0.3  # mixing standard deviation, in standard deviations of one observation
SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class Sequential:
    """An always-valid p-value and a (1 - alpha) confidence sequence of the difference."""

    p_value: float
    sequence: tuple[float, float] | None  # None when the variance is 0 (nothing to bound)


@dataclass(frozen=True, slots=True)
class SampleRatio:
    p_value: float
    expected: dict[str, float]  # requests each variant should have received
    observed: dict[str, int]
    mismatch: bool


def msprt(difference: float, variance: float, tau2: float, alpha: float = ALPHA) -> Sequential:
    """The normal-mixture mSPRT of a ``difference`` with ``variance`` (of the estimate) and
    mixing variance ``tau2``; a zero variance gives no sequence and ``p = 1`` (or ``0`` when the
    difference is not 0)."""
    if not variance > 0 or not tau2 > 0:
        return Sequential(1.0 if difference == 0 else 0.0, None)
    total = variance + tau2
    log_ratio = 0.5 * math.log(variance / total) + difference**2 * tau2 / (2 * variance * total)
    p_value = 1.0 if log_ratio <= 0 else math.exp(-log_ratio)
    half = math.sqrt(
        variance * total / tau2 * (2 * math.log(1 / alpha) + math.log(total / variance))
    )
    return Sequential(p_value, (difference - half, difference + half))


def sequential_proportions(
    hits_a: int, n_a: int, hits_b: int, n_b: int, tau: float = TAU, alpha: float = ALPHA
) -> Sequential:
    """mSPRT of ``hits_b / n_b - hits_a / n_a``: the p-value with the pooled variance (the null's),
    the sequence with each side's own (the pooled one when both are 0: all right or all wrong)."""
    p_a, p_b = hits_a / n_a, hits_b / n_b
    pooled = (hits_a + hits_b) / (n_a + n_b)
    sigma2 = pooled * (1 - pooled)
    diff = p_b - p_a
    tested = msprt(diff, sigma2 * (1 / n_a + 1 / n_b), tau * tau * sigma2, alpha)
    spread = p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b
    bounded = msprt(diff, spread or sigma2 * (1 / n_a + 1 / n_b), tau * tau * sigma2, alpha)
    return Sequential(tested.p_value, bounded.sequence)


def sequential_means(
    n_a: int,
    mean_a: float,
    variance_a: float,
    n_b: int,
    mean_b: float,
    variance_b: float,
    tau: float = TAU,
    alpha: float = ALPHA,
) -> Sequential:
    """mSPRT of ``mean_b - mean_a`` from each side's count, mean and sample variance."""
    var_a, var_b = max(variance_a, 0.0), max(variance_b, 0.0)
    sigma2 = ((n_a - 1) * var_a + (n_b - 1) * var_b) / max(n_a + n_b - 2, 1)
    return msprt(mean_b - mean_a, var_a / n_a + var_b / n_b, tau * tau * sigma2, alpha)


def sample_ratio(
    observed: dict[str, int], weights: dict[str, float], threshold: float = SRM_ALPHA
) -> SampleRatio | None:
    """Chi-square of the requests per variant against ``weights`` (relative; variants of weight 0
    are left out); ``None`` before any request, or with fewer than two weighted variants."""
    shares = {v: w for v, w in weights.items() if w > 0}
    counts = {v: int(observed.get(v, 0)) for v in shares}
    total, weight = sum(counts.values()), sum(shares.values())
    if total == 0 or len(shares) < 2:
        return None
    expected = {v: total * w / weight for v, w in shares.items()}
    from scipy import stats

    found = stats.chisquare(list(counts.values()), list(expected.values()))
    p_value = float(found.pvalue)
    return SampleRatio(p_value, expected, counts, p_value < threshold)
