"""Zero-downtime rollout: load and warm a version beside the serving one, then switch.

:func:`prepare` loads a version (re-reading the repository when the version is new on disk) and
warms it with one prediction of its signature's example; a version that fails either is recorded
as failed (visible in ``/models`` and logged) and never switched to. :func:`switch` then makes it
the default in one assignment: requests already routed finish on the version they hold.
:func:`drain_and_unload` waits until no request holds a version before unloading it. Rollback is
a rollout to the version that served before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from modelport.core.registry import LoadedModel, ModelState, ModelVersion, Registry, RegistryModel
from modelport.core.repository import scan
from modelport.errors import Conflict, ModelNotFound, ModelportError

__all__ = [
    "RolloutResult",
    "drain_and_unload",
    "prepare",
    "retire",
    "rollout_sync",
    "switch",
    "warm",
]

log = logging.getLogger("modelport.traffic.rollout")
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class RolloutResult:
    model: str
    version: int
    previous: int

    def as_dict(self) -> dict[str, object]:
        return {"model": self.model, "version": self.version, "previous": self.previous}


def warm(loaded: LoadedModel) -> None:
    """One prediction of the signature's example, in this thread; raises on any failure."""
    record = loaded.request.model_validate(loaded.signature.example())
    outputs = loaded.runtime.predict(loaded.rows([record]))
    if len(outputs.predictions) != 1:
        raise ModelportError(f"answered {len(outputs.predictions)} rows for 1")


def _on_disk(registry: Registry, model: RegistryModel, version: int) -> ModelVersion:
    if registry.origin is None:
        raise ModelNotFound(f"model {model.name!r} has no version {version}")
    # only this model's folder: another model's broken card is no reason to refuse this one
    for source in scan(model.folder or registry.origin):
        mine = source.name == model.name or source.folder == model.folder
        if mine and source.error is not None:
            raise source.error  # its card does not read: a 409 naming it
        if source.name == model.name and version in source.versions:
            artifact = source.versions[version]
            mv = ModelVersion(
                model.name, version, model.card, artifact, root=source.root, candidate=True
            )
            if version in source.problems:
                mv.fail(source.problems[version])
            return mv
    known = ", ".join(str(v) for v in sorted(model.versions))
    raise ModelNotFound(
        f"model {model.name!r} has no version {version} in the repository; served: {known}"
    )


def _failed(model: RegistryModel, mv: ModelVersion, why: str) -> Conflict:
    mv.state, mv.error = ModelState.FAILED, why
    model.versions = {**model.versions, mv.version: mv}  # copy on write: readers iterate it
    serving = model.default_version
    log.error(
        "rollout of %s v%d failed, v%d keeps serving: %s", model.name, mv.version, serving, why
    )
    return Conflict(
        f"version {mv.version} of {model.name!r} was not switched to, v{serving} keeps serving: "
        f"{why}"
    )


def prepare(registry: Registry, name: str, version: int) -> LoadedModel:
    """Load (if needed) and warm ``version`` beside the serving one; 409 when it fails."""
    model = registry.model(name)
    mv = model.versions.get(version)
    if mv is None or (mv.state is ModelState.FAILED and mv.loaded is None):
        mv = _on_disk(registry, model, version)  # new on disk, or a failed one fixed since
    if mv.state is ModelState.FAILED:
        raise _failed(model, mv, mv.error or "failed")
    if mv.loaded is None:
        mv.load(registry.trusted)
        if mv.loaded is None:
            raise _failed(model, mv, mv.error or "failed to load")
    started = time.perf_counter()
    try:
        warm(mv.loaded)
    except Exception as exc:
        mv.unload()
        message = exc.message if isinstance(exc, ModelportError) else f"{exc}"
        raise _failed(model, mv, f"warm-up prediction failed: {message}") from exc
    log.info("warmed %s v%d in %.1f ms", name, version, (time.perf_counter() - started) * 1000)
    if model.versions.get(version) is not mv:
        model.versions = {**model.versions, version: mv}
        registry.changed()
    return mv.loaded


def switch(
    registry: Registry, name: str, version: int, previous: int | None = None
) -> RolloutResult:
    """Make a loaded ``version`` the default; ``previous`` (default: the one serving now) is
    kept for rollback."""
    model = registry.model(name)
    previous = model.default_version if previous is None else previous
    if previous != version:
        model.previous = previous
    model.active = version
    registry.changed()
    log.info("%s now serves v%d (was v%d)", name, version, previous)
    return RolloutResult(name, version, previous)


def rollout_sync(registry: Registry, name: str, version: int) -> RolloutResult:
    """Prepare then switch (blocking: call it in a worker thread from async code)."""
    with _lock:  # one rollout at a time: two would race for `previous`
        serving = registry.model(name).default_version  # before a new version joins the ready
        prepare(registry, name, version)
        return switch(registry, name, version, serving)


def rollback_target(registry: Registry, name: str) -> int:
    model = registry.model(name)
    if model.previous is None:
        raise Conflict(f"nothing to roll back to: {name!r} has had no rollout")
    return model.previous


async def drain_and_unload(
    registry: Registry, name: str, version: int, timeout_s: float = 30.0
) -> bool:
    """Stop routing to ``version``, wait for requests holding it (up to ``timeout_s``), then
    unload it. Returns whether it drained in time (it is unloaded either way)."""
    model = registry.model(name)
    mv = model.versions.get(version)
    if mv is None:
        raise ModelNotFound(f"model {name!r} has no version {version}")
    if version == model.default_version:
        raise Conflict(f"v{version} is the version {name!r} serves by default; roll out another")
    model.versions = {v: m for v, m in model.versions.items() if v != version}
    registry.changed()
    return await retire(mv, timeout_s)


async def retire(mv: ModelVersion, timeout_s: float = 30.0) -> bool:
    """Unload a version nothing routes to any more, once the requests holding it are done (up
    to ``timeout_s``); its batcher is closed first. Returns whether it drained in time."""
    loaded = mv.loaded
    if loaded is None:
        return True
    deadline = time.monotonic() + timeout_s
    while loaded.inflight > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    drained = loaded.inflight <= 0
    if loaded.batcher is not None:
        await loaded.batcher.close()
    mv.unload()
    log.info("unloaded %s v%d (%s)", mv.name, mv.version, "drained" if drained else "timed out")
    return drained
