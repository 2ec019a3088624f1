"""Latency as a guardrail metric: a variant that wins on the experiment's metric but is clearly
slower than the baseline is not declared the winner.

Per variant the database gives the count, mean and sample variance of the latencies of the
requests answered below 400 (:mod:`.summary`); the difference of the means gets Welch's
fixed-horizon test and the always-valid mSPRT (:mod:`.sequential`), as every comparison does.
The guardrail is **breached** when the variant is slower with an always-valid p-value below 0.05
*and* by more than :data:`TOLERANCE` (5 %) of the baseline's mean latency and more than
:data:`TOLERANCE_MS` (1 ms): a difference too small to matter, however certain (a sub-millisecond
model's jitter), never blocks a winner.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from modelport.outcomes.sequential import sequential_means
from modelport.outcomes.stats import ALPHA, compare_means
from modelport.outcomes.summary import VariantSummary

__all__ = ["LATENCY", "TOLERANCE", "TOLERANCE_MS", "GuardrailReport", "latency_guardrail"]

LATENCY = "latency_ms"
TOLERANCE = 0.05  # a slowdown within 5 % of the baseline's mean latency is tolerated,
TOLERANCE_MS = 1.0  # and one within 1 ms


class GuardrailReport(BaseModel):
    """The variant's mean latency against the baseline's (answered requests, milliseconds)."""

    metric: str = LATENCY
    baseline_mean: float
    variant_mean: float
    difference: float  # variant minus baseline, ms: above 0, the variant is slower
    p_value: float | None  # Welch's, fixed-horizon
    always_valid_p_value: float
    confidence_sequence: tuple[float, float] | None
    tolerance_ms: float  # 5 % of the baseline's mean, at least 1 ms
    breached: bool  # clearly slower: always-valid p < 0.05 and beyond the tolerance


def latency_guardrail(
    a: VariantSummary, b: VariantSummary, min_samples: int, tau: float
) -> GuardrailReport | None:
    """``b``'s latency guardrail against ``a``; ``None`` below ``min_samples`` answered requests
    on either side (or 2)."""
    n_a, n_b = a.answered, b.answered
    if min(n_a, n_b) < max(min_samples, 2) or a.latency_ms_mean is None:
        return None
    if b.latency_ms_mean is None:
        return None
    mean_a, mean_b = a.latency_ms_mean, b.latency_ms_mean
    var_a, var_b = a.latency_ms_variance, b.latency_ms_variance
    fixed = compare_means("a", n_a, mean_a, var_a, "b", n_b, mean_b, var_b, min_samples, LATENCY)
    seq = sequential_means(n_a, mean_a, var_a, n_b, mean_b, var_b, tau)
    difference = mean_b - mean_a
    tolerance = max(TOLERANCE * mean_a, TOLERANCE_MS)
    return GuardrailReport(
        baseline_mean=mean_a, variant_mean=mean_b, difference=difference,
        p_value=None if math.isnan(fixed.p_value) else fixed.p_value,
        always_valid_p_value=seq.p_value, confidence_sequence=seq.sequence,
        tolerance_ms=tolerance,
        breached=seq.p_value < ALPHA and difference > tolerance,
    )  # fmt: skip
