"""Following MLflow registry aliases: a moved alias rolls out by itself.

Every ``registry_poll_interval`` seconds each worker asks the registry which version each followed
alias (``models:/NAME@ALIAS``) names. When it moved, the new version is fetched into the cache
(pinned), then rolled out with the zero-downtime rollout of :mod:`.rollout`: load and warm beside
the serving version, switch, drain and unload the old one. With ``follow: canary`` in the card,
the new version goes through the card's canary steps instead; with ``follow: shadow`` it is loaded
beside the serving version and gets shadow copies of live traffic (the card's
``traffic.shadow.fraction``, default all of it) while the old version answers, until a rollout
(``modelport rollout NAME VERSION``, or the admin API) promotes it; the shadow then ends. A
version that fails to fetch, load or warm is marked failed (visible in ``/models``) and the old
one keeps serving; moving the alias back rolls back. A registry that does not answer changes
nothing: the poll is counted as failed (``modelport_registry_polls_total{result="failed"}``) and
shown in ``/models``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from modelport.core.registry import ModelState, ModelVersion, RegistryModel
from modelport.errors import ModelportError
from modelport.model.card import CARD_FILE, read_card
from modelport.model.policy import Canary, Shadow, TrafficPolicy
from modelport.sources.registry import (
    cache_root,
    fetch_version,
    parse_uri,
    resolve,
    version_entry,
)
from modelport.traffic.periodic import every
from modelport.traffic.rollout import drain_and_unload, prepare, rollout_sync

if TYPE_CHECKING:
    from modelport.core.dataplane import DataPlane
    from modelport.traffic.router import TrafficRouter

__all__ = ["RegistryFollower"]

log = logging.getLogger("modelport.traffic.follow")


def _followed(model: RegistryModel) -> bool:
    source = model.card.source
    return source is not None and parse_uri(source).alias is not None


class RegistryFollower:
    """Follows every registry alias of one worker's models."""

    def __init__(self, plane: DataPlane, router: TrafficRouter) -> None:
        self.plane = plane
        self.router = router
        self.seen: dict[str, int] = {}

    def _status(self, model: RegistryModel) -> dict[str, Any]:
        if model.source is None:
            model.source = {
                "uri": model.card.source,
                "registry_version": model.default_version,
                "reachable": None,
                "failed_polls": 0,
                "last_error": None,
            }
        return model.source

    def describe(self) -> None:
        """Show each registry model's source in ``/models`` before the first poll."""
        for model in list(self.plane.registry.models.values()):
            if model.card.source is not None:
                self._status(model)
            traffic, follow = model.card.traffic, model.card.follow
            if follow == "switch" or traffic is None:
                continue
            if traffic.canary if follow == "canary" else traffic.shadow:
                # the card's canary (shadow) is the template of the next version's, not a policy
                rest = traffic.model_copy(update={follow: None})
                with contextlib.suppress(ModelportError):
                    self.router.set_policy(model.name, rest if rest.versions() else None)

    async def check(self) -> None:
        """One poll of every followed alias."""
        for model in list(self.plane.registry.models.values()):
            if model.card.source is None:
                continue
            status = self._status(model)
            if not _followed(model):
                continue
            ref = parse_uri(model.card.source)
            try:
                version = await anyio.to_thread.run_sync(resolve, ref)
            except ModelportError as exc:
                self._failed_poll(model, status, exc.message)
                continue
            self.plane.observer.registry_poll(model.name, True)
            status.update(reachable=True, checked=time.time(), registry_version=version)
            status["canary"] = self._canary_now(model.name)
            if model.card.follow == "shadow":
                self._shadow_promoted(model)
                status["shadow"] = self._shadow_now(model.name)
            seen = self.seen.setdefault(model.name, model.default_version)
            if version != seen:
                self.seen[model.name] = version
                await self._roll(model, version)

    def _failed_poll(self, model: RegistryModel, status: dict[str, Any], why: str) -> None:
        self.plane.observer.registry_poll(model.name, False)
        status.update(reachable=False, failed_polls=status["failed_polls"] + 1, last_error=why)
        if status["failed_polls"] == 1 or status["failed_polls"] % 100 == 0:
            log.warning("%s: %s; v%d keeps serving", model.card.source, why, model.default_version)

    async def _roll(self, model: RegistryModel, version: int) -> None:
        name, serving = model.name, model.default_version
        log.info("%s moved to v%d (serving v%d): rolling out", model.card.source, version, serving)
        try:
            staged = await anyio.to_thread.run_sync(self._stage, model, version)
            if staged.state is ModelState.FAILED:
                return
            if model.card.follow == "shadow":
                await self._shadow(model, serving, version)
                return
            if model.card.follow == "canary" and version != serving:
                await anyio.to_thread.run_sync(prepare, self.plane.registry, name, version)
                self._canary(model, serving, version)
                return
            await anyio.to_thread.run_sync(rollout_sync, self.plane.registry, name, version)
        except ModelportError as exc:  # marked failed in /models; the old version serves
            log.error("%s v%d not rolled out: %s", model.card.source, version, exc.message)
            return
        if serving != version and serving in model.versions:
            await drain_and_unload(self.plane.registry, name, serving)

    def _stage(self, model: RegistryModel, version: int) -> ModelVersion:
        """Fetch ``version`` into the cache and add it, not loaded yet, beside the serving one."""
        current = model.versions.get(version)
        if current is not None and current.loaded is not None:
            return current
        ref = parse_uri(str(model.card.source))
        repository_card = model.folder / CARD_FILE if model.folder else None
        card = read_card(repository_card) if repository_card and repository_card.is_file() else None
        try:  # a candidate: its failure leaves strict readiness alone (the old one serves)
            artifact, version_card = version_entry(fetch_version(ref.name, version), card)
            mv = ModelVersion(model.name, version, version_card, artifact, candidate=True)
        except ModelportError as exc:
            folder = cache_root() / ref.name
            mv = ModelVersion(model.name, version, model.card, folder, candidate=True)
            mv.state, mv.error = ModelState.FAILED, exc.message
            log.error("%s v%d cannot be served: %s", model.card.source, version, exc.message)
        model.versions = {**model.versions, version: mv}  # copy on write: readers iterate it
        return mv

    def _canary_now(self, name: str) -> dict[str, Any] | None:
        """The canary a moved alias started, while it runs (shown in ``/models``)."""
        policy = self.router.policy(name)
        canary = policy.canary if policy is not None else None
        return canary.model_dump(mode="json", exclude={"auto"}) if canary else None

    def _canary(self, model: RegistryModel, baseline: int, version: int) -> None:
        template = model.card.traffic.canary if model.card.traffic else None
        steps = template.steps if template else [5.0, 25.0, 50.0, 100.0]
        canary = Canary(
            baseline=baseline,
            version=version,
            steps=steps,
            auto=template.auto if template else None,
        )
        if model.active is None:  # else the highest ready version, the canary, is the default
            model.active = baseline
        self.router.set_policy(model.name, TrafficPolicy(canary=canary))
        self._status(model)["canary"] = self._canary_now(model.name)
        log.info("%s v%d is a canary beside v%d", model.name, version, baseline)

    def _shadowed(self, name: str) -> int | None:
        policy = self.router.policy(name)
        return policy.shadow.version if policy is not None and policy.shadow else None

    def _with_shadow(self, model: RegistryModel, version: int | None) -> TrafficPolicy | None:
        """This worker's policy of ``model`` with its shadow copying to ``version`` (none)."""
        template = model.card.traffic.shadow if model.card.traffic else None
        fraction = template.fraction if template is not None else 1.0
        shadow = Shadow(version=version, fraction=fraction) if version is not None else None
        policy = (self.router.policy(model.name) or TrafficPolicy()).model_copy(
            update={"shadow": shadow}
        )
        return policy if policy.versions() else None

    async def _shadow(self, model: RegistryModel, serving: int, version: int) -> None:
        """``follow: shadow``: ``version`` loaded and shadowing the serving version (moved back
        to the serving version: no shadow); the version shadowed before is unloaded."""
        before = self._shadowed(model.name)
        if version != serving:
            if model.active is None:  # else the highest ready version, the shadow, would serve
                model.active = serving
            await anyio.to_thread.run_sync(prepare, self.plane.registry, model.name, version)
            log.info("%s v%d shadows v%d", model.name, version, serving)
        shadow = version if version != serving else None
        self.router.set_policy(model.name, self._with_shadow(model, shadow))
        self._status(model)["shadow"] = self._shadow_now(model.name)
        if before is not None and before not in (version, serving) and before in model.versions:
            await drain_and_unload(self.plane.registry, model.name, before)

    def _shadow_promoted(self, model: RegistryModel) -> None:
        """A rollout made the shadowed version the default: the shadow is done."""
        shadowed = self._shadowed(model.name)
        if shadowed is not None and shadowed == model.default_version:
            self.router.set_policy(model.name, self._with_shadow(model, None))
            log.info("%s v%d was promoted: its shadow ends", model.name, shadowed)

    def _shadow_now(self, name: str) -> dict[str, Any] | None:
        """The shadow a moved alias started and what its copies did so far (``/models``)."""
        policy = self.router.policy(name)
        if policy is None or policy.shadow is None:
            return None
        stats = self.router.shadows.get(name)
        done = (
            stats.as_dict() if stats is not None and stats.version == policy.shadow.version else {}
        )
        done.pop("recent", None)
        return {**policy.shadow.model_dump(mode="json"), **done}

    def following(self, interval_s: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Poll every ``interval_s`` seconds inside the block (never when it is 0); the models'
        sources are described at once."""
        self.describe()
        return every(interval_s, self.plane.registry, self.check, "following the registry")
