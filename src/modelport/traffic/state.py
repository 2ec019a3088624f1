"""Rollout state shared by every worker process: ``models/<name>/.modelport-state.json``.

With several gunicorn workers an admin call reaches one worker. So every rollout, rollback and
traffic change is also written to the model's state file with a higher ``generation``, and each
worker's :class:`StateWatcher` checks the files every ``watch_interval`` seconds and applies what
it has not applied yet. ``modelport rollout`` writes the same file, so a rollout needs no HTTP
call, and a restarted server comes back serving what was rolled out. Writers hold an exclusive
lock on ``.modelport-state.lock``; readers see whole files only (write, then rename).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from pydantic import BaseModel, ValidationError

from modelport.core.registry import Registry
from modelport.core.repository import scan
from modelport.errors import BadRequest, Conflict, ModelportError
from modelport.model.policy import TrafficPolicy
from modelport.traffic.periodic import every
from modelport.traffic.rollout import prepare, rollout_sync

if TYPE_CHECKING:
    from modelport.core.dataplane import DataPlane
    from modelport.traffic.router import TrafficRouter

__all__ = [
    "STATE_FILE",
    "RolloutState",
    "StateWatcher",
    "publish",
    "read_state",
    "request_rollback",
    "request_rollout",
]

STATE_FILE = ".modelport-state.json"
log = logging.getLogger("modelport.traffic.state")


class RolloutState(BaseModel):
    generation: int = 0
    active: int | None = None
    previous: int | None = None
    traffic: TrafficPolicy | None = None
    traffic_set: bool = False  # whether `traffic` overrides the card (None: no policy)


def read_state(folder: Path) -> RolloutState | None:
    path = folder / STATE_FILE
    try:
        return RolloutState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.error("%s: unreadable rollout state, ignored: %s", path, exc)
        return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / ".modelport-state.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_FIELDS = ("active", "previous", "traffic")


def publish(folder: Path, **changes: object) -> RolloutState:
    """Write a new generation of ``folder``'s state, changing only ``active``, ``previous``
    and ``traffic`` where given."""
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise TypeError(f"unknown rollout state fields {sorted(unknown)}")
    with _locked(folder):
        state = read_state(folder) or RolloutState()
        update: dict[str, object] = {"generation": state.generation + 1, **changes}
        if "traffic" in changes:
            update["traffic_set"] = True
        state = state.model_copy(update=update)
        temporary = folder / f".{STATE_FILE}.{os.getpid()}"
        temporary.write_text(state.model_dump_json(), encoding="utf-8")
        temporary.replace(folder / STATE_FILE)
    return state


def request_rollout(
    repository: Path, name: str, version: int, trusted: tuple[Path, ...] = ()
) -> RolloutState:
    """Check here that ``version`` loads and warms, then publish it as the version every
    server watching ``repository`` serves (what ``modelport rollout`` does)."""
    registry = Registry(scan(repository), trusted=trusted, origin=repository)
    model = registry.model(name)
    if model.folder is None:
        raise BadRequest(f"{repository} is a single model file: serve a repository to roll out")
    state = read_state(model.folder) or RolloutState()
    if state.active is None:
        registry.load_model(name)  # what serves by default: the highest version that loads
    serving = state.active if state.active is not None else model.default_version
    prepare(registry, name, version)
    registry.unload_all()
    previous = serving if serving != version else state.previous
    return publish(model.folder, active=version, previous=previous)


def request_rollback(repository: Path, name: str, trusted: tuple[Path, ...] = ()) -> RolloutState:
    """Roll ``name`` back to the version that served before its last rollout."""
    registry = Registry(scan(repository), origin=repository)
    folder = registry.model(name).folder
    state = read_state(folder) if folder is not None else None
    if state is None or state.previous is None:
        raise Conflict(f"nothing to roll back to: {name!r} has had no rollout")
    return request_rollout(repository, name, state.previous, trusted)


class StateWatcher:
    """Applies the state files' new generations in this worker."""

    def __init__(self, plane: DataPlane, router: TrafficRouter) -> None:
        self.plane = plane
        self.router = router
        self.applied: dict[str, int] = {}

    def mark(self, name: str, state: RolloutState) -> None:
        """This worker made ``state`` itself: nothing to apply."""
        self.applied[name] = max(self.applied.get(name, 0), state.generation)

    def publish(self, name: str, changes: dict[str, object]) -> None:
        """Publish a change this worker made to ``name`` for the other workers."""
        folder = self.plane.registry.model(name).folder
        if folder is not None:
            self.mark(name, publish(folder, **changes))

    async def check(self) -> None:
        for model in list(self.plane.registry.models.values()):
            if model.folder is None:
                continue
            state = await anyio.to_thread.run_sync(read_state, model.folder)
            if state is None or state.generation <= self.applied.get(model.name, 0):
                continue
            self.applied[model.name] = state.generation
            await self._apply(model.name, state)

    async def _apply(self, name: str, state: RolloutState) -> None:
        registry = self.plane.registry
        model = registry.model(name)
        try:
            if state.active is not None and state.active != model.default_version:
                await anyio.to_thread.run_sync(rollout_sync, registry, name, state.active)
            if state.previous is not None:
                model.previous = state.previous
            if state.traffic_set:
                self.router.set_policy(name, state.traffic)
        except ModelportError as exc:  # logged and shown in /models; the old version serves
            log.error("rollout state %d of %s not applied: %s", state.generation, name, exc.message)

    def watching(self, interval_s: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Check every ``interval_s`` seconds inside the block (never when it is 0)."""
        return every(interval_s, self.plane.registry, self.check, "checking the rollout state")
