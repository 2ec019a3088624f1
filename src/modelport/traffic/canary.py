"""The automatic canary: judge each step on the canary's own answers, then advance or roll back.

:func:`judge` is pure: a step's window of answers and the bounds in, a verdict out.
:class:`CanaryMonitor` feeds it every answer served by a ``canary`` variant (handed over by the
server's observing step when the request ends) and applies the verdict through the traffic
router. With several workers each judges the traffic it serves and publishes its decision
through the rollout state file; the others apply it and start their next step from there.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport.model.policy import AutoCanary, TrafficPolicy

__all__ = ["CanaryMonitor", "Verdict", "Window", "judge"]

log = logging.getLogger("modelport.traffic.canary")


class Verdict(str, enum.Enum):
    WAIT = "wait"
    ADVANCE = "advance"
    ROLLBACK = "rollback"


@dataclass
class Window:
    """The canary's answers during one step."""

    policy: TrafficPolicy
    started: float
    requests: int = 0
    errors: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def p99_ms(self) -> float:
        return float(np.percentile(np.fromiter(self.latencies_ms, float), 99))


def judge(bounds: AutoCanary, window: Window, now: float) -> Verdict:
    """Roll back as soon as enough answers break a bound; advance once a step lasted its
    interval within bounds; otherwise wait."""
    if window.requests < bounds.min_requests:
        return Verdict.WAIT
    if window.errors / window.requests > bounds.max_error_rate:
        return Verdict.ROLLBACK
    if bounds.max_p99_ms is not None and window.p99_ms() > bounds.max_p99_ms:
        return Verdict.ROLLBACK
    if now - window.started >= bounds.interval_s:
        return Verdict.ADVANCE
    return Verdict.WAIT


class CanaryMonitor:
    """Windows of the automatic canaries, one per model."""

    def __init__(
        self,
        policy_of: Callable[[str], TrafficPolicy | None],
        act: Callable[[str, Verdict, str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy_of = policy_of
        self.act = act
        self.clock = clock
        self.windows: dict[str, Window] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=50)

    def observe(self, name: str, status: int, latency_ms: float) -> None:
        """One answer of ``name``'s canary variant."""
        policy = self.policy_of(name)
        if policy is None or policy.canary is None or policy.canary.auto is None:
            return
        now = self.clock()
        window = self.windows.get(name)
        if window is None or window.policy is not policy:  # a new step (or a new canary)
            window = self.windows[name] = Window(policy, now)
        window.requests += 1
        window.errors += status >= 500
        window.latencies_ms.append(latency_ms)
        verdict = judge(policy.canary.auto, window, now)
        if verdict is Verdict.WAIT:
            return
        reason = (
            f"step {policy.canary.step} ({policy.canary.percent:g} %): {window.requests} answers, "
            f"{window.errors} errors, p99 {window.p99_ms():.1f} ms"
        )
        del self.windows[name]
        self.events.append({"model": name, "verdict": verdict.value, "reason": reason})
        log.warning("canary of %s: %s after %s", name, verdict.value, reason)
        self.act(name, verdict, reason)
