"""Always-valid p-values, confidence sequences and the sample-ratio check: against the formulas,
and by simulation, under continuous peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from modelport.outcomes.sequential import (
    msprt,
    sample_ratio,
    sequential_means,
    sequential_proportions,
)
from modelport.outcomes.stats import compare_means, compare_proportions


def _ratio(d: float, v: float, tau2: float) -> float:
    """The mixture likelihood ratio, integrated numerically over N(0, tau2) (not the closed
    form the code uses)."""
    theta = np.linspace(-12 * math.sqrt(tau2), 12 * math.sqrt(tau2), 200_001)
    prior = stats.norm.pdf(theta, 0, math.sqrt(tau2))
    likelihood = np.exp(-((d - theta) ** 2) / (2 * v) + d**2 / (2 * v))
    return float(np.trapezoid(prior * likelihood, theta))


@pytest.mark.parametrize(
    ("d", "v", "tau2"),
    [(0.05, 0.0004, 0.0025), (0.1, 0.001, 0.01), (-0.02, 0.0001, 0.0004), (0.0, 0.01, 0.01)],
)
def test_msprt_is_the_mixture_likelihood_ratio(d: float, v: float, tau2: float) -> None:
    found = msprt(d, v, tau2)
    assert found.p_value == pytest.approx(min(1.0, 1 / _ratio(d, v, tau2)), rel=1e-6)
    assert found.sequence is not None
    low, high = found.sequence
    assert low < d < high
    for edge in (low, high):  # the sequence's ends are where the ratio against them is 1/alpha
        assert _ratio(d - edge, v, tau2) == pytest.approx(1 / 0.05, rel=1e-5)


def test_always_valid_is_more_conservative_than_fixed_horizon() -> None:
    fixed = compare_proportions("a", 600, 1000, "b", 660, 1000)
    valid = sequential_proportions(600, 1000, 660, 1000)
    assert fixed.p_value < valid.p_value
    assert valid.sequence is not None
    assert valid.sequence[0] < fixed.ci95[0]
    assert fixed.ci95[1] < valid.sequence[1]
    means = sequential_means(500, 1.0, 1.0, 500, 1.3, 1.2)
    assert means.p_value < 0.01
    assert means.sequence is not None
    assert means.sequence[0] > 0


@pytest.mark.parametrize(
    ("args", "p_value"),
    [((0.0, 0.0, 1.0), 1.0), ((0.1, 0.0, 1.0), 0.0), ((0.1, 1.0, 0.0), 0.0)],
)
def test_msprt_without_variance(args: tuple[float, float, float], p_value: float) -> None:
    found = msprt(*args)
    assert (found.p_value, found.sequence) == (p_value, None)


def test_sample_ratio_flags_a_90_10_policy_delivering_80_20() -> None:
    srm = sample_ratio({"v1": 800, "v2": 200}, {"v1": 90, "v2": 10})
    assert srm is not None
    assert srm.mismatch
    assert srm.expected == {"v1": 900.0, "v2": 100.0}
    chi2 = (800 - 900) ** 2 / 900 + (200 - 100) ** 2 / 100
    assert srm.p_value == pytest.approx(stats.chi2.sf(chi2, 1))
    fine = sample_ratio({"v1": 905, "v2": 95, "other": 7}, {"v1": 0.9, "v2": 0.1, "off": 0})
    assert fine is not None
    assert not fine.mismatch
    assert fine.observed == {"v1": 905, "v2": 95}
    assert sample_ratio({}, {"v1": 1, "v2": 1}) is None
    assert sample_ratio({"v1": 10}, {"v1": 1}) is None


PEEKS, BATCH, EXPERIMENTS = 20, 50, 2000


def _print(metric: str, naive: int, valid: int) -> None:
    print(
        f"\nA/A {metric}, {PEEKS} peeks, {EXPERIMENTS} experiments, false positives: "
        f"fixed-horizon {naive / EXPERIMENTS:.1%}, always-valid {valid / EXPERIMENTS:.1%}"
    )


def _first_rejection(p_values: list[float]) -> bool:
    return any(p < 0.05 for p in p_values)


def test_peeking_at_an_a_a_test_fools_the_fixed_horizon_test_not_the_always_valid_one() -> None:
    """2,000 A/A tests of a 60 % accuracy, each looked at after every one of 20 batches of 50
    feedback per variant, stopped at the first p < 0.05."""
    rng = np.random.default_rng(16)
    hits = rng.binomial(BATCH, 0.6, size=(EXPERIMENTS, 2, PEEKS)).cumsum(axis=2)
    naive = valid = 0
    for e in range(EXPERIMENTS):
        fixed, always = [], []
        for k in range(PEEKS):
            n = BATCH * (k + 1)
            a, b = int(hits[e, 0, k]), int(hits[e, 1, k])
            fixed.append(compare_proportions("a", a, n, "b", b, n).p_value)
            always.append(sequential_proportions(a, n, b, n).p_value)
        naive += _first_rejection(fixed)
        valid += _first_rejection(always)
    _print("accuracy", naive, valid)
    assert naive / EXPERIMENTS > 0.15  # the fixed-horizon test, peeked at, is badly fooled
    assert valid / EXPERIMENTS <= 0.05  # 2,000 runs: the sampling error is about 0.5 %


def test_peeking_at_an_a_a_test_of_mean_absolute_errors() -> None:
    rng = np.random.default_rng(61)
    errors = rng.exponential(2.0, size=(EXPERIMENTS, 2, PEEKS, BATCH))
    sums, squares = errors.sum(axis=3).cumsum(axis=2), (errors**2).sum(axis=3).cumsum(axis=2)
    naive = valid = 0
    for e in range(EXPERIMENTS):
        fixed, always = [], []
        for k in range(PEEKS):
            n = BATCH * (k + 1)
            mean = sums[e, :, k] / n
            var = (squares[e, :, k] - n * mean**2) / (n - 1)
            args = (n, float(mean[0]), float(var[0]), n, float(mean[1]), float(var[1]))
            fixed.append(compare_means("a", *args[:3], "b", *args[3:]).p_value)
            always.append(sequential_means(*args).p_value)
        naive += _first_rejection(fixed)
        valid += _first_rejection(always)
    _print("mean absolute error", naive, valid)
    assert naive / EXPERIMENTS > 0.15
    assert valid / EXPERIMENTS <= 0.05
