"""Power estimates against known values, the always-valid MDE against the mSPRT it is derived
from, and the latency guardrail in reports from a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelport.outcomes.power import always_valid_mde, fixed_mde, power, samples_needed
from modelport.outcomes.report import experiment_report
from modelport.outcomes.sequential import TAU, msprt
from modelport.outcomes.store import Store
from tests.outcomes.helpers import pending, write


def test_fixed_horizon_mde_matches_the_textbook_sample_sizes() -> None:
    # statsmodels' NormalIndPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8) = 62.79:
    # Cohen's d = 0.5 needs 62.79 per group; and a proportion of 0.5 moving by 0.1, 392.4
    assert fixed_mde(1.0, 62.79, 62.79) == pytest.approx(0.5, rel=1e-4)
    assert fixed_mde(0.25, 392.44, 392.44) == pytest.approx(0.1, rel=1e-4)
    # unequal groups: the variance of the difference is sigma2 * (1/n_a + 1/n_b)
    z = 1.959964 + 0.841621
    assert fixed_mde(4.0, 100, 300) == pytest.approx(z * math.sqrt(4 * (1 / 100 + 1 / 300)), 1e-6)
    assert fixed_mde(1.0, 400, 400) == pytest.approx(fixed_mde(1.0, 100, 100) / 2)


def test_the_always_valid_mde_is_detected_with_80_percent_power() -> None:
    sigma2, n, tau = 0.25, 500, TAU
    variance, tau2 = sigma2 * 2 / n, tau * tau * sigma2
    mde = always_valid_mde(sigma2, n, n, tau)
    # the mSPRT's p-value crosses 0.05 exactly at its confidence sequence's half-width
    half = msprt(0.0, variance, tau2).sequence
    assert half is not None
    edge = half[1]
    assert (
        msprt(edge * 1.0001, variance, tau2).p_value
        < 0.05
        < msprt(edge * 0.9999, variance, tau2).p_value
    )
    assert mde == pytest.approx(edge + 0.841621 * math.sqrt(variance), rel=1e-6)
    # a true difference of the MDE: about 80 % of experiments read at n are significant
    rng = np.random.default_rng(3)
    observed = rng.normal(mde, math.sqrt(variance), 20_000)
    detected = np.mean([msprt(float(d), variance, tau2).p_value < 0.05 for d in observed])
    assert detected == pytest.approx(0.8, abs=0.015)
    assert mde > fixed_mde(sigma2, n, n)  # the price of peeking


def test_samples_needed_is_the_smallest_n_whose_mde_reaches_the_effect() -> None:
    needed = samples_needed(0.25, 0.1, TAU)
    assert needed is not None
    assert always_valid_mde(0.25, needed, needed, TAU) <= 0.1
    assert always_valid_mde(0.25, needed - 1, needed - 1, TAU) > 0.1
    assert 393 < needed < 4 * 393  # more than the fixed horizon's 393, not absurdly more
    assert samples_needed(0.25, -0.1, TAU) == needed  # a loss is as detectable as a gain
    assert samples_needed(0.25, 0.0, TAU) is None
    assert samples_needed(0.25, 1e-9, TAU) is None  # beyond 10**12 per variant
    assert power(0.0, 10, 10, TAU) is None  # no variance: nothing to scale
    assert power(0.25, 0, 10, TAU) is None
    found = power(0.25, 40, 60, TAU, effect=0.1)
    assert found is not None
    assert (found.samples_needed, found.effect) == (needed, 0.1)


def _ab(
    store: Store, n: int, latency: dict[str, float], right: dict[str, float], seed: int = 5
) -> None:
    """``n`` requests per variant, latency around ``latency[v]`` ms, feedback right ``right[v]``
    of the time."""
    rng = np.random.default_rng(seed)
    records = []
    for version, variant in enumerate(("v1", "v2"), start=1):
        for i in range(n):
            ms = float(latency[variant] * rng.uniform(0.9, 1.1))
            records.append(
                pending(f"{variant}-{i}", ["yes"], version=version, variant=variant, latency_ms=ms)
            )
    write(store, records)
    for version_variant in ("v1", "v2"):
        for i in range(n):
            truth = "yes" if i < right[version_variant] * n else "no"
            store.put_feedback(f"{version_variant}-{i}", 0, truth, None)


def test_a_winner_that_is_clearly_slower_is_not_declared(store: Store) -> None:
    _ab(store, 200, latency={"v1": 10.0, "v2": 20.0}, right={"v1": 0.5, "v2": 0.95})
    report = experiment_report(store, "m")
    (c,) = report.comparisons
    assert c.latency is not None
    assert c.latency.breached
    assert c.latency.difference == pytest.approx(10.0, abs=0.5)
    assert c.latency.always_valid_p_value < 0.001
    assert c.verdict.startswith(
        "no winner: v2 better on accuracy, always-valid p<0.001, but slower"
    )
    assert f"latency_ms (+{c.latency.difference:.2f} ms, always-valid p<0.001)" in c.verdict
    assert (c.verdict_metric, report.verdict_metric) == ("latency_ms", "latency_ms")
    assert report.verdict == c.verdict
    assert c.power is None  # accuracy is decided: its power is not the question
    assert [v.latency_ms_mean for v in report.variants] == [
        pytest.approx(10.0, abs=0.3), pytest.approx(20.0, abs=0.6)
    ]  # fmt: skip


def test_a_winner_within_the_latency_tolerance_wins(store: Store) -> None:
    _ab(store, 200, latency={"v1": 10.0, "v2": 10.2}, right={"v1": 0.5, "v2": 0.95})
    report = experiment_report(store, "m")
    (c,) = report.comparisons
    assert c.latency is not None
    assert not c.latency.breached  # 2 % slower: within the 5 % tolerance
    assert c.verdict == "v2 better, always-valid p<0.001"
    assert (c.verdict_metric, report.verdict_metric) == ("accuracy", "accuracy")
    assert c.power is None  # a winner: no power estimate


def test_a_sub_millisecond_slowdown_never_blocks_a_winner(store: Store) -> None:
    _ab(store, 200, latency={"v1": 0.2, "v2": 0.4}, right={"v1": 0.5, "v2": 0.95})
    (c,) = experiment_report(store, "m").comparisons
    assert c.latency is not None
    assert c.latency.always_valid_p_value < 0.001  # twice as slow, for certain: +0.2 ms
    assert (c.latency.breached, c.latency.tolerance_ms) == (False, 1.0)
    assert c.verdict == "v2 better, always-valid p<0.001"


def test_too_early_shows_what_the_experiment_can_detect(store: Store) -> None:
    _ab(store, 12, latency={"v1": 10.0, "v2": 10.0}, right={"v1": 0.5, "v2": 0.75})
    report = experiment_report(store, "m")
    (c,) = report.comparisons
    assert c.verdict.startswith("not enough data yet")
    assert c.latency is None  # below min_samples answered requests
    assert c.power is not None
    sigma2 = 0.625 * 0.375  # pooled accuracy (6 + 9) / 24
    assert c.power.mde == pytest.approx(always_valid_mde(sigma2, 12, 12, TAU))
    assert c.power.mde_fixed_horizon == pytest.approx(fixed_mde(sigma2, 12, 12))
    assert c.power.effect is None  # no difference computed yet: nothing to size for
    early = experiment_report(store, "m", min_samples=5).comparisons[0]
    assert early.power is not None
    assert early.power.effect == pytest.approx(0.25)
    assert early.power.samples_needed == samples_needed(sigma2, 0.25, TAU)
