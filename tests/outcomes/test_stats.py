"""The A/B statistics against hand-computed values and SciPy's own tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from modelport.outcomes.stats import (
    compare_errors,
    compare_proportions,
    mean_interval,
    percentile,
    proportion_interval,
    verdict,
)


def test_two_proportion_z_test_by_hand() -> None:
    # v1 right 60/100, v2 right 80/100: pooled p = 0.7, se = sqrt(0.7 * 0.3 * (2 / 100))
    c = compare_proportions("v1", 60, 100, "v2", 80, 100)
    se = math.sqrt(0.7 * 0.3 * 0.02)
    assert c.difference == pytest.approx(0.2)
    assert c.p_value == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(0.2 / se / math.sqrt(2)))))
    assert c.p_value == pytest.approx(0.002028, abs=1e-6)
    margin = 1.959964 * math.sqrt(0.6 * 0.4 / 100 + 0.8 * 0.2 / 100)  # Wald, unpooled
    assert c.ci95 == pytest.approx((0.2 - margin, 0.2 + margin), abs=1e-6)
    assert c.verdict == "v2 better, p=0.002"


@pytest.mark.parametrize(("hits_a", "n_a", "hits_b", "n_b"), [(45, 90, 30, 70), (10, 40, 31, 41)])
def test_z_test_matches_scipys_chi_square(hits_a: int, n_a: int, hits_b: int, n_b: int) -> None:
    """The pooled z-test is the 2x2 chi-square test without continuity correction (z^2 = chi2)."""
    table = [[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert compare_proportions("a", hits_a, n_a, "b", hits_b, n_b).p_value == pytest.approx(
        expected, rel=1e-9
    )


def test_the_loser_and_no_difference_are_named() -> None:
    assert compare_proportions("v1", 80, 100, "v2", 60, 100).verdict == "v1 better, p=0.002"
    same = compare_proportions("v1", 50, 100, "v2", 52, 100)
    assert same.verdict.startswith("no significant difference, p=0.")
    assert compare_proportions("v1", 30, 30, "v2", 30, 30).p_value == 1.0  # se 0: no evidence


def test_not_enough_data_below_the_minimum() -> None:
    c = compare_proportions("v1", 20, 29, "v2", 29, 29, min_samples=30)
    assert c.verdict == "not enough data yet (v1: 29, v2: 29 of 30 feedback each)"
    assert math.isnan(c.p_value)
    assert compare_proportions("v1", 20, 29, "v2", 29, 29, min_samples=10).p_value < 0.05


def test_welch_on_absolute_errors_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    a, b = list(rng.exponential(1.0, 60)), list(rng.exponential(0.6, 45))
    c = compare_errors("v1", a, "v2", b)
    expected = stats.ttest_ind(b, a, equal_var=False)
    low, high = expected.confidence_interval(0.95)
    assert c.metric == "mae"
    assert c.difference == pytest.approx(np.mean(b) - np.mean(a))
    assert c.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert c.ci95 == pytest.approx((low, high), rel=1e-9)
    assert c.verdict == verdict("v1", "v2", c.difference, c.p_value, higher_is_better=False)
    assert c.verdict.startswith("v2 better")  # a lower error wins


def test_percentiles_interpolate_and_allow_no_data() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]  # sorted: 1 2 3 5 7 9
    assert [percentile(values, q) for q in (0, 50, 90, 100)] == [1.0, 4.0, 8.0, 9.0]
    assert percentile([], 50) is None


def test_verdict_wording() -> None:
    assert verdict("v1", "v2", 0.1, 0.003, higher_is_better=True) == "v2 better, p=0.003"
    assert verdict("v1", "v2", 0.1, 0.0001, higher_is_better=True) == "v2 better, p<0.001"
    assert verdict("v1", "v2", 0.1, 0.2, higher_is_better=True) == (
        "no significant difference, p=0.200"
    )


def test_wilson_interval_of_one_variants_accuracy() -> None:
    # statsmodels' proportion_confint(40, 50, method="wilson"): (0.6696, 0.8876)
    low, high = proportion_interval(40, 50) or (0, 0)
    assert (low, high) == pytest.approx((0.66959, 0.88760), abs=1e-4)
    assert proportion_interval(0, 0) is None
    low, high = proportion_interval(3, 3) or (0, 0)
    assert 0 < low < 1  # never the empty interval Wald's gives at 100 %
    assert high == 1.0  # never past 1


def test_t_interval_of_one_variants_mae_matches_scipy() -> None:
    errors = [0.5, 1.5, 0.25, 2.0, 1.0, 0.75]
    expected = stats.t.interval(0.95, len(errors) - 1, loc=np.mean(errors), scale=stats.sem(errors))
    n, mean, variance = len(errors), float(np.mean(errors)), float(np.var(errors, ddof=1))
    assert mean_interval(n, mean, variance) == pytest.approx(expected)
    assert mean_interval(1, 1.0, 0.0) is None
    low, _ = mean_interval(4, 0.75, float(np.var([0.0, 0.0, 0.0, 3.0], ddof=1))) or (1, 1)
    assert low == 0.0  # absolute errors: never below 0
