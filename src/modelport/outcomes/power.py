"""How big a difference an experiment can see now, and how much data it needs: the minimum
detectable effect (MDE) and the sample size, at ``alpha`` = 0.05 (two-sided) and 80 % power.

With ``sigma2`` the per-observation variance and ``n_a``, ``n_b`` the samples, the difference of
the two means (or proportions) is estimated with variance ``V = sigma2 * (1/n_a + 1/n_b)``.

* **Fixed horizon** (the textbook two-sample z-test, as statsmodels' ``NormalIndPower``):
  ``MDE = (z[1 - alpha/2] + z[power]) * sqrt(V)``, and the samples per variant to detect ``delta``
  are ``2 * sigma2 * (z[1 - alpha/2] + z[power])**2 / delta**2``.
* **Always valid** (what the verdict uses, :mod:`.sequential`): the mSPRT's p-value drops below
  ``alpha`` exactly when ``|d|`` passes the half-width ``h`` of its confidence sequence, so the
  difference it detects with 80 % power at these sample sizes is ``h + z[power] * sqrt(V)``
  (the far side's tail, below 1e-3 here, neglected as in the fixed-horizon formula). Its sample
  size has no closed form: it is the root of that equation in ``n`` (``scipy.optimize.brentq``).

scipy provides the normal quantiles and the root finder; the formulas above are the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelport.outcomes.stats import ALPHA

__all__ = ["POWER", "Power", "always_valid_mde", "fixed_mde", "power", "samples_needed"]

POWER = 0.8
_MAX_SAMPLES = 10**12  # beyond this, "needs more than any experiment will get": None


@dataclass(frozen=True, slots=True)
class Power:
    """What an experiment can detect with ``power`` at significance ``alpha``."""

    alpha: float
    power: float
    mde: float  # the always-valid verdict's, at the current sample sizes
    mde_fixed_horizon: float  # a test read once, at these sample sizes
    samples_needed: int | None  # per variant, for the always-valid verdict to see ``effect``
    effect: float | None  # the difference ``samples_needed`` is for (the observed one)


def _z(q: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(q))


def fixed_mde(
    sigma2: float, n_a: float, n_b: float, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The fixed-horizon two-sided z-test's minimum detectable effect."""
    return (_z(1 - alpha / 2) + _z(power)) * math.sqrt(sigma2 * (1 / n_a + 1 / n_b))


def always_valid_mde(
    sigma2: float, n_a: float, n_b: float, tau: float, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The mSPRT's (mixing standard deviation ``tau``, in standard deviations of one observation)
    minimum detectable effect at these sample sizes."""
    variance = sigma2 * (1 / n_a + 1 / n_b)
    tau2 = tau * tau * sigma2
    total = variance + tau2
    half = math.sqrt(
        variance * total / tau2 * (2 * math.log(1 / alpha) + math.log(total / variance))
    )
    return half + _z(power) * math.sqrt(variance)


def samples_needed(
    sigma2: float, effect: float, tau: float, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Samples per variant (equal split) for the always-valid verdict to detect ``effect`` with
    ``power``; ``None`` for no effect, or one needing more than 10**12."""
    from scipy import optimize

    effect = abs(effect)
    if not effect > 0 or not sigma2 > 0:
        return None

    def short(n: float) -> float:
        return always_valid_mde(sigma2, n, n, tau, alpha, power) - effect

    if short(2) <= 0:
        return 2
    if short(_MAX_SAMPLES) > 0:
        return None
    root = float(optimize.brentq(short, 2, _MAX_SAMPLES, xtol=1e-3))
    return math.ceil(root)


def power(
    sigma2: float,
    n_a: int,
    n_b: int,
    tau: float,
    effect: float | None = None,
    alpha: float = ALPHA,
) -> Power | None:
    """The power estimate of a comparison of ``n_a`` and ``n_b`` observations of variance
    ``sigma2``; ``None`` without samples on both sides or without variance (nothing to scale)."""
    if n_a < 1 or n_b < 1 or not sigma2 > 0 or math.isnan(sigma2):
        return None
    needed = None if effect is None else samples_needed(sigma2, effect, tau, alpha)
    return Power(
        alpha=alpha, power=POWER, mde=always_valid_mde(sigma2, n_a, n_b, tau, alpha),
        mde_fixed_horizon=fixed_mde(sigma2, n_a, n_b, alpha), samples_needed=needed,
        effect=None if needed is None else effect,
    )  # fmt: skip
