"""Routing one request to a model version: traffic policies, shadow copies, in-flight counts.

:class:`TrafficRouter` picks the version for an unversioned prediction (``/predict``,
``/models/{m}/predict``, V1, V2 without a version) with :func:`modelport.model.policy.choose`, and
records the variant in :func:`modelport.core.context.current`. An explicit version bypasses the
policy. The versions a request holds and its pending shadow copy are kept in its
:class:`~modelport.core.context.RequestInfo` (the server releases them when the request ends).
Shadow copies run as separate, bounded tasks in a fresh request context: their answers
and failures are counted, never returned, and never delay the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.core import context
from modelport.core.registry import LoadedModel, Registry, RegistryModel
from modelport.errors import BadRequest, Conflict, ModelNotFound
from modelport.model.policy import Route, TrafficPolicy, choose, compile_policy
from modelport.traffic.canary import CanaryMonitor, Verdict
from modelport.traffic.rollout import switch

if TYPE_CHECKING:
    from modelport.core.result import InferenceResult

    Infer = Callable[[LoadedModel, np.ndarray], Awaitable[InferenceResult]]

__all__ = ["ShadowStats", "TrafficRouter"]

log = logging.getLogger("modelport.shadow")


@dataclass(slots=True)
class ShadowStats:
    """What the shadow copies of one model's traffic did."""

    version: int
    requests: int = 0
    errors: int = 0
    dropped: int = 0  # not sent: too many shadow copies in flight
    agreed: int = 0  # same labels as the answer returned
    latency_ms_total: float = 0.0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))

    def as_dict(self) -> dict[str, Any]:
        done = self.requests - self.errors
        return {
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "dropped": self.dropped,
            "agreement": round(self.agreed / done, 4) if done else None,
            "mean_latency_ms": round(self.latency_ms_total / done, 3) if done else None,
            "recent": list(self.recent),
        }


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


class TrafficRouter:
    """Live traffic policies of every model (the card's, or one set through the admin API)."""

    def __init__(self, registry: Registry, infer: Infer, max_shadow_inflight: int = 64) -> None:
        self.registry = registry
        self.infer = infer  # the data plane's inference, for shadow copies
        self.max_shadow_inflight = max_shadow_inflight
        self.overrides: dict[str, TrafficPolicy | None] = {}
        self.shadows: dict[str, ShadowStats] = {}
        self._compiled: dict[str, tuple[TrafficPolicy, Route | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.monitor = CanaryMonitor(self._policy_or_none, self._auto)
        # told of every change made here (an automatic canary step), to tell other workers
        self.on_change: Callable[[str, dict[str, object]], None] | None = None

    def policy(self, name: str) -> TrafficPolicy | None:
        if name in self.overrides:
            return self.overrides[name]
        return self.registry.model(name).card.traffic

    def _policy_or_none(self, name: str) -> TrafficPolicy | None:
        try:
            return self.policy(name)
        except ModelNotFound:
            return None

    def advance(self, name: str) -> dict[str, object]:
        """The next canary step; past the last, promote the canary to the default version.
        Returns what changed (for the rollout state file)."""
        policy = self.policy(name)
        if policy is None or policy.canary is None:
            raise Conflict(f"{name!r} has no canary policy to advance")
        canary = policy.canary
        if canary.step + 1 < len(canary.steps):
            step = canary.model_copy(update={"step": canary.step + 1})
            changed = policy.model_copy(update={"canary": step})
            self.set_policy(name, changed)
            return {"traffic": changed}
        result = switch(self.registry, name, canary.version, canary.baseline)
        self.set_policy(name, None)
        return {"traffic": None, "active": result.version, "previous": result.previous}

    def abort(self, name: str) -> dict[str, object]:
        """All traffic back to the canary's baseline."""
        policy = self.policy(name)
        if policy is None or policy.canary is None:
            raise Conflict(f"{name!r} has no canary policy to abort")
        self.set_policy(name, None)
        return {"traffic": None}

    def _auto(self, name: str, verdict: Verdict, reason: str) -> None:
        changed = self.advance(name) if verdict is Verdict.ADVANCE else self.abort(name)
        if self.on_change is not None:
            self.on_change(name, changed)

    def set_policy(self, name: str, policy: TrafficPolicy | None) -> None:
        """Replace ``name``'s policy live (``None``: no policy); every version it names must be
        loaded (400 otherwise)."""
        model = self.registry.model(name)
        for version in sorted(policy.versions() if policy else ()):
            mv = model.versions.get(version)
            if mv is None or mv.loaded is None:
                known = ", ".join(str(v) for v, m in model.versions.items() if m.loaded) or "none"
                raise BadRequest(
                    f"traffic policy names version {version} of {name!r}, which is not loaded; "
                    f"loaded versions: {known}"
                )
        self.overrides[name] = policy
        self._compiled.pop(name, None)
        log.info("traffic policy of %s: %s", name, policy.model_dump() if policy else None)

    def _route(self, model: RegistryModel) -> Route | None:
        policy = self.overrides.get(model.name, model.card.traffic)
        if policy is None:
            return None
        cached = self._compiled.get(model.name)
        if cached is None or cached[0] is not policy:
            cached = (policy, compile_policy(policy, salt=model.name))
            self._compiled[model.name] = cached
        return cached[1]

    def route(self, name: str | None, version: int | None = None) -> LoadedModel:
        """The version that serves this prediction; records it as held and the variant."""
        model = self.registry.model(name)
        info = context.current()
        variant, loaded = None, None
        route = self._route(model) if version is None else None
        if route is not None:
            key = _header(info.headers, route.header) if info is not None else None
            choice = choose(route, key)
            if choice is not None and (mv := model.versions.get(choice.version)) is not None:
                loaded, variant = mv.loaded, choice.variant
            if route.shadow is not None and info is not None:
                info.shadow = self._shadow_target(model, route)
        if loaded is None:
            loaded, variant = self.registry.get(model.name, version), None
        if info is not None:  # the request reached this version: the observing step records it
            if info.shadow is loaded:  # a shadow of the version that answers (it was promoted)
                info.shadow = None
            info.model, info.version = loaded.name, loaded.version
            info.variant = variant or f"v{loaded.version}"
            loaded.inflight += 1
            info.held.append(loaded)
        return loaded

    @staticmethod
    def _shadow_target(model: RegistryModel, route: Route) -> LoadedModel | None:
        shadow = route.shadow
        if shadow is None or (shadow.fraction < 1 and np.random.random() >= shadow.fraction):
            return None
        mv = model.versions.get(shadow.version)
        return mv.loaded if mv is not None else None

    def after(self, rows: np.ndarray, result: InferenceResult) -> None:
        """Send the pending shadow copy of this request, if any (fire and forget)."""
        info = context.current()
        if info is None or info.shadow is None:
            return
        target, info.shadow = info.shadow, None
        stats = self.shadows.get(target.name)
        if stats is None or stats.version != target.version:
            stats = self.shadows[target.name] = ShadowStats(target.version)
        if len(self._tasks) >= self.max_shadow_inflight:
            stats.dropped += 1
            return
        parent = info.request_id
        self._spawn(self._shadow(target, rows, result, stats, parent))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shadow(
        self,
        target: LoadedModel,
        rows: np.ndarray,
        primary: InferenceResult,
        stats: ShadowStats,
        parent: str,
    ) -> None:
        shadow_info = context.RequestInfo(f"{parent}-shadow", variant="shadow")
        with context.use(shadow_info):
            started = time.perf_counter()
            target.inflight += 1
            try:
                result = await self.infer(target, rows)
            except Exception as exc:  # a shadow failure is recorded, never raised
                stats.requests += 1
                stats.errors += 1
                stats.recent.append({"request_id": parent, "error": str(exc)})
                log.warning("shadow v%d of %s failed: %s", target.version, target.name, exc)
                return
            finally:
                target.inflight -= 1
        elapsed = (time.perf_counter() - started) * 1000
        labels, returned = result.labels(), primary.labels()
        stats.requests += 1
        stats.latency_ms_total += elapsed
        stats.agreed += labels == returned
        stats.recent.append(
            {
                "request_id": parent,
                "prediction": labels,
                "served": returned,
                "ms": round(elapsed, 3),
            }
        )

    async def wait_shadows(self, timeout_s: float = 5.0) -> None:
        """Let shadow copies in flight finish (at shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
