"""One background loop for the checks that follow something outside the process: the rollout
state file (:mod:`.state`) and a model registry's aliases (:mod:`.follow`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from modelport.core.registry import Registry

__all__ = ["every"]

log = logging.getLogger("modelport.traffic")


async def _loop(
    interval_s: float, registry: Registry, check: Callable[[], Awaitable[None]], what: str
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        if not registry.loaded:
            continue
        try:
            await check()
        except Exception:  # never let the loop die
            log.exception("%s failed", what)


@contextlib.asynccontextmanager
async def every(
    interval_s: float, registry: Registry, check: Callable[[], Awaitable[None]], what: str
) -> AsyncIterator[None]:
    """Run ``check`` every ``interval_s`` seconds inside the block (never when it is 0), once
    the registry has loaded; a failure is logged as ``what`` failed and the loop goes on."""
    task = (
        asyncio.ensure_future(_loop(interval_s, registry, check, what)) if interval_s > 0 else None
    )
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
