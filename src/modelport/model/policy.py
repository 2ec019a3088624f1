"""Version and traffic policies, and the pure choice of a version for one request.

A model card (or the admin API) sets, per model:

- ``version_policy``: which versions on disk are served: ``all`` (the default), ``latest: N``
  or ``specific: [1, 3]``;
- ``traffic``: how unversioned requests are split between served versions:

  - ``split``: weighted variants (A/B, canary), e.g. ``[{version: 1, weight: 90},
    {version: 2, weight: 10}]``;
  - ``canary``: a gradual canary, ``{baseline: 1, version: 2, steps: [5, 25, 50, 100], step: 0}``;
    the canary gets ``steps[step]`` percent, the baseline the rest; with ``auto`` it advances
    and rolls back by itself (:mod:`modelport.traffic.canary`);
  - ``sticky_header``: requests carrying this header (``X-User-Id`` by default) are assigned by a
    hash of its value, so one user always sees the same variant; requests without it are
    assigned at random;
  - ``shadow``: a copy of (a fraction of) the requests goes to another version; its answer is
    recorded, never returned.

:func:`choose` is a pure function of ``(route, key)`` (plus a random draw for requests without a
key): a hash and a short scan of cumulative weights.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AutoCanary",
    "Canary",
    "Choice",
    "Route",
    "Shadow",
    "SplitEntry",
    "TrafficPolicy",
    "VersionPolicy",
    "choose",
    "compile_policy",
    "key_point",
]


class VersionPolicy(BaseModel):
    """Which versions found on disk are served. Neither key: every version (``all``)."""

    model_config = ConfigDict(extra="forbid")

    latest: int | None = Field(None, ge=1, description="Serve the N highest versions.")
    specific: list[int] | None = Field(None, min_length=1, description="Serve these versions.")

    @model_validator(mode="before")
    @classmethod
    def _all(cls, value: Any) -> Any:
        return {} if value == "all" else value

    @model_validator(mode="after")
    def _one(self) -> VersionPolicy:
        if self.latest is not None and self.specific is not None:
            raise ValueError("give `latest` or `specific`, not both")
        return self

    def select(self, available: Iterable[int]) -> list[int]:
        """The served versions among ``available``, in ascending order."""
        versions = sorted(available)
        if self.latest is not None:
            return versions[-self.latest :]
        if self.specific is not None:
            return [v for v in versions if v in set(self.specific)]
        return versions


class SplitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    weight: float = Field(ge=0, description="Relative weight; weights need not add up to 100.")
    variant: str | None = Field(None, max_length=64, description="Label; default `v<version>`.")


class AutoCanary(BaseModel):
    """Advance the canary automatically while it stays within bounds; roll it back when not.

    Each step is judged on the canary's own answers: once ``min_requests`` have been seen, an
    error rate (5xx) above ``max_error_rate`` or a p99 above ``max_p99_ms`` rolls it back at
    once; a step that lasted ``interval_s`` within bounds advances to the next (past the last,
    the canary is promoted to the default version).
    """

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(60.0, gt=0, description="Seconds each step must stay in bounds.")
    min_requests: int = Field(20, ge=1, description="Canary answers needed to judge a step.")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="Share of 5xx answers allowed.")
    max_p99_ms: float | None = Field(None, gt=0, description="Slowest 1 % allowed, in ms.")


class Canary(BaseModel):
    """A gradual canary: ``version`` gets ``steps[step]`` percent, ``baseline`` the rest."""

    model_config = ConfigDict(extra="forbid")

    baseline: int = Field(ge=1)
    version: int = Field(ge=1)
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1)
    step: int = Field(0, ge=0)
    auto: AutoCanary | None = None

    @model_validator(mode="after")
    def _valid(self) -> Canary:
        if self.baseline == self.version:
            raise ValueError("the canary and its baseline are the same version")
        if any(not 0 <= s <= 100 for s in self.steps) or self.steps != sorted(self.steps):
            raise ValueError("steps are ascending percentages between 0 and 100")
        if self.step >= len(self.steps):
            raise ValueError(f"step {self.step} is past the last of {len(self.steps)} steps")
        return self

    @property
    def percent(self) -> float:
        return self.steps[self.step]


class Shadow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    fraction: float = Field(1.0, ge=0, le=1, description="Share of requests copied.")


class TrafficPolicy(BaseModel):
    """How one model's unversioned requests are routed."""

    model_config = ConfigDict(extra="forbid")

    split: list[SplitEntry] | None = Field(None, min_length=1)
    canary: Canary | None = None
    sticky_header: str = Field("X-User-Id", pattern=r"^[A-Za-z0-9-]{1,64}$")
    shadow: Shadow | None = None

    @field_validator("split")
    @classmethod
    def _weights(cls, split: list[SplitEntry] | None) -> list[SplitEntry] | None:
        if split is None:
            return None
        if sum(e.weight for e in split) <= 0:
            raise ValueError("at least one weight must be above 0")
        if len({e.version for e in split}) != len(split):
            raise ValueError("a version appears twice in the split")
        return split

    @model_validator(mode="after")
    def _one_split(self) -> TrafficPolicy:
        if self.split is not None and self.canary is not None:
            raise ValueError("give `split` or `canary`, not both")
        return self

    def shares(self) -> dict[str, float]:
        """Each variant's configured weight (relative; the shadow is no variant)."""
        found: dict[str, float] = {}
        for weight, choice in _entries(self):
            found[choice.variant] = found.get(choice.variant, 0.0) + weight
        return found

    def versions(self) -> set[int]:
        """Every version the policy routes to (shadow included)."""
        found = {e.version for e in self.split or []}
        if self.canary is not None:
            found |= {self.canary.baseline, self.canary.version}
        if self.shadow is not None:
            found.add(self.shadow.version)
        return found


@dataclass(frozen=True, slots=True)
class Choice:
    version: int
    variant: str


@dataclass(frozen=True, slots=True)
class Route:
    """A policy compiled for lookups: cumulative upper bounds in [0, 1) and their choices."""

    bounds: tuple[float, ...]
    choices: tuple[Choice, ...]
    header: bytes
    salt: bytes
    shadow: Shadow | None


def _entries(policy: TrafficPolicy) -> list[tuple[float, Choice]]:
    if policy.canary is not None:
        c = policy.canary
        # the canary first: a sticky user in the canary stays in it as the steps grow
        return [
            (c.percent, Choice(c.version, "canary")),
            (100 - c.percent, Choice(c.baseline, f"v{c.baseline}")),
        ]
    return [(e.weight, Choice(e.version, e.variant or f"v{e.version}")) for e in policy.split or []]


def compile_policy(policy: TrafficPolicy, salt: str = "") -> Route | None:
    """The lookup form of ``policy``; ``None`` when it splits nothing (shadow only is kept)."""
    entries = [(w, c) for w, c in _entries(policy) if w > 0]
    total = sum(w for w, _ in entries)
    bounds, running = [], 0.0
    for weight, _ in entries:
        running += weight / total
        bounds.append(running)
    if bounds:
        bounds[-1] = 1.0
    if not entries and policy.shadow is None:
        return None
    return Route(
        tuple(bounds),
        tuple(c for _, c in entries),
        policy.sticky_header.lower().encode("latin-1"),
        salt.encode(),
        policy.shadow,
    )


def key_point(key: bytes, salt: bytes = b"") -> float:
    """A request key's fixed point in [0, 1): the first 8 bytes of its BLAKE2b hash."""
    digest = hashlib.blake2b(key, digest_size=8, key=salt[:64]).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose(
    route: Route, key: bytes | None, draw: Callable[[], float] = random.random
) -> Choice | None:
    """The variant for a request with ``key`` (its sticky header's value), or ``None`` when
    the route splits nothing. Without a key the point is drawn at random."""
    if not route.choices:
        return None
    point = key_point(key, route.salt) if key else draw()
    index = bisect.bisect_right(route.bounds, point)
    return route.choices[min(index, len(route.choices) - 1)]
