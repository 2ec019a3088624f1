"""The statistics of an A/B test, as pure functions over plain numbers.

* Classifiers: accuracy per variant; the difference between two variants with a 95 % Wald
  confidence interval, and the two-sided p-value of the pooled two-proportion z-test.
* Regressors: mean absolute error per variant; the difference with a 95 % Welch interval and
  the two-sided p-value of Welch's t-test on the absolute errors.
* A value sent with feedback (a classifier's business value: revenue, 1/0 converted): its mean
  per variant, compared as the absolute errors are (Welch), higher is better.
* Each variant's own metric has a 95 % interval too: Wilson's for an accuracy
  (:func:`proportion_interval`), Student's t for a mean (:func:`mean_interval`).

Below ``min_samples`` feedback rows in either variant the verdict is "not enough data yet".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

__all__ = [
    "ALPHA",
    "HIGHER_IS_BETTER",
    "MIN_SAMPLES",
    "Comparison",
    "compare_errors",
    "compare_means",
    "compare_proportions",
    "lerp",
    "mean_interval",
    "p_text",
    "percentile",
    "proportion_interval",
    "verdict",
]

ALPHA = 0.05
MIN_SAMPLES = 30  # feedback rows per variant before any verdict
HIGHER_IS_BETTER = frozenset({"accuracy", "value"})  # the other metrics are errors or costs


@dataclass(frozen=True, slots=True)
class Comparison:
    """Variant ``b`` against variant ``a``: ``difference`` is ``b - a`` of the metric."""

    a: str
    b: str
    metric: str
    difference: float
    ci95: tuple[float, float]
    p_value: float
    verdict: str


def percentile(values: Sequence[float], q: float) -> float | None:
    """numpy's ``q``-th percentile of ``values``; ``None`` when there are none."""
    import numpy as np  # (here: the outcome writer process imports this module's neighbours)

    return float(np.percentile(values, q)) if values else None


def lerp(low: float, high: float, fraction: float) -> float:
    """``fraction`` of the way from ``low`` to ``high``, rounded exactly as numpy's percentile
    interpolates (from the nearer end), so a percentile read from two stored rows is numpy's."""
    step = high - low
    return high - step * (1 - fraction) if fraction >= 0.5 else low + step * fraction


def _stats() -> ModuleType:
    """``scipy.stats``, imported when a report is computed, not when the server starts."""
    from scipy import stats

    module: ModuleType = stats
    return module


def _z_critical() -> float:
    return float(_stats().norm.ppf(1 - ALPHA / 2))


def proportion_interval(hits: int, n: int) -> tuple[float, float] | None:
    """Wilson's 95 % interval of the proportion ``hits / n``; ``None`` without samples."""
    if n <= 0:
        return None
    z = _z_critical()
    p, z2 = hits / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - margin), min(1.0, centre + margin))


def mean_interval(
    n: int, mean: float, variance: float, floor: float | None = 0.0
) -> tuple[float, float] | None:
    """Student's t 95 % interval of a mean of ``n`` values with sample variance ``variance``,
    never below ``floor`` (0 for absolute errors; ``None``: no floor); ``None`` with fewer than 2
    values."""
    if n < 2:
        return None
    margin = float(_stats().t.ppf(1 - ALPHA / 2, n - 1)) * math.sqrt(max(variance, 0.0) / n)
    low = mean - margin
    return (low if floor is None else max(floor, low), mean + margin)


def compare_proportions(
    a: str, hits_a: int, n_a: int, b: str, hits_b: int, n_b: int, min_samples: int = MIN_SAMPLES
) -> Comparison:
    """Accuracy of ``b`` minus accuracy of ``a``, with a CI and the two-proportion z-test."""
    if min(n_a, n_b) < max(min_samples, 1):
        return _too_early(a, n_a, b, n_b, "accuracy", min_samples)
    p_a, p_b = hits_a / n_a, hits_b / n_b
    diff = p_b - p_a
    margin = _z_critical() * math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    p_value = 1.0 if se == 0 else float(2 * _stats().norm.sf(abs(diff) / se))
    return Comparison(
        a, b, "accuracy", diff, (diff - margin, diff + margin), p_value,
        verdict(a, b, diff, p_value, higher_is_better=True),
    )  # fmt: skip


def compare_errors(
    a: str,
    errors_a: Sequence[float],
    b: str,
    errors_b: Sequence[float],
    min_samples: int = MIN_SAMPLES,
) -> Comparison:
    """Mean absolute error of ``b`` minus that of ``a``, with Welch's CI and t-test."""
    n_a, n_b = len(errors_a), len(errors_b)
    mean_a = sum(errors_a) / n_a if n_a else math.nan
    mean_b = sum(errors_b) / n_b if n_b else math.nan
    var_a = statistics.variance(errors_a) if n_a > 1 else 0.0
    var_b = statistics.variance(errors_b) if n_b > 1 else 0.0
    return compare_means(a, n_a, mean_a, var_a, b, n_b, mean_b, var_b, min_samples)


def compare_means(
    a: str,
    n_a: int,
    mean_a: float,
    variance_a: float,
    b: str,
    n_b: int,
    mean_b: float,
    variance_b: float,
    min_samples: int = MIN_SAMPLES,
    metric: str = "mae",
) -> Comparison:
    """:func:`compare_errors` from each side's count, mean and sample variance (``n - 1``);
    ``metric`` names the mean (lower is better: an error, a latency; higher for a ``value``)."""
    if min(n_a, n_b) < max(min_samples, 2):
        return _too_early(a, n_a, b, n_b, metric, max(min_samples, 2))
    diff = mean_b - mean_a
    var_a, var_b = variance_a / n_a, variance_b / n_b
    se = math.sqrt(var_a + var_b)
    if se == 0:
        p_value, margin = (1.0 if diff == 0 else 0.0), 0.0
    else:
        dof = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
        p_value = float(2 * _stats().t.sf(abs(diff) / se, dof))
        margin = float(_stats().t.ppf(1 - ALPHA / 2, dof)) * se
    return Comparison(
        a, b, metric, diff, (diff - margin, diff + margin), p_value,
        verdict(a, b, diff, p_value, higher_is_better=metric in HIGHER_IS_BETTER),
    )  # fmt: skip


def _too_early(a: str, n_a: int, b: str, n_b: int, metric: str, needed: int) -> Comparison:
    nan = float("nan")
    text = f"not enough data yet ({a}: {n_a}, {b}: {n_b} of {needed} feedback each)"
    return Comparison(a, b, metric, nan, (nan, nan), nan, text)


def p_text(p_value: float, label: str = "p") -> str:
    """``p=0.003``, or ``p<0.001`` below that; ``label`` names the p-value."""
    return f"{label}<0.001" if p_value < 0.001 else f"{label}={p_value:.3f}"


def verdict(
    a: str, b: str, difference: float, p_value: float, *, higher_is_better: bool, label: str = "p"
) -> str:
    """A plain-language verdict: ``"v2 better, p=0.003"`` or ``"no significant difference"``;
    ``label`` names the p-value (``always-valid p``)."""
    if p_value >= ALPHA or difference == 0:
        return f"no significant difference, {p_text(p_value, label)}"
    b_wins = (difference > 0) == higher_is_better
    return f"{b if b_wins else a} better, {p_text(p_value, label)}"
