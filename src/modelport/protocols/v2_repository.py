"""The Open Inference Protocol's model repository extension: list, load and unload models
without a restart. Load re-reads the model from the repository on disk and swaps it in once it
is loaded; unload stops serving it (later requests for it answer 404).

With several worker processes, each worker has its own registry: a load or unload reaches the
worker that answers it. Load and unload change what is served: they need the admin key, as the
admin API does, and answer 403 while no ``MODELPORT_ADMIN_KEY`` is configured. The index only
reads what ``GET /models`` shows too, and stays open.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelport.core.dataplane import DataPlane
from modelport.core.redact import redact
from modelport.errors import BadRequest, ConfigError
from modelport.protocols._http import error_responses, json_response, plane_of, read_body
from modelport.protocols.auth import check_admin
from modelport.settings import Settings
from modelport.traffic.rollout import retire

__all__ = ["guard", "index_entries", "load_model", "router", "unload_model"]

router = APIRouter(
    prefix="/v2/repository",
    tags=["Open Inference Protocol (V2)"],
    responses=error_responses(400, 401, 403, 404, 409),
)

_STATES = {"ready": "READY", "loading": "LOADING", "pending": "LOADING", "failed": "UNAVAILABLE"}


@router.post("/index")
async def index(request: Request) -> list[dict[str, Any]]:
    body = await read_body(request)
    only_ready = False
    if body.strip():
        try:
            only_ready = bool(orjson.loads(body).get("ready", False))
        except (orjson.JSONDecodeError, AttributeError):
            only_ready = False
    return index_entries(plane_of(request), only_ready)


def index_entries(plane: DataPlane, only_ready: bool = False) -> list[dict[str, str]]:
    """Every known model version: ``name``, ``version``, ``state`` (and ``reason`` if failed)."""
    entries = []
    for model in plane.registry.models.values():
        for mv in model.versions.values():
            state = _STATES[mv.state.value]
            if only_ready and state != "READY":
                continue
            entry = {"name": model.name, "version": str(mv.version), "state": state}
            if mv.error:
                entry["reason"] = redact(mv.error)
            entries.append(entry)
    return entries


def guard(settings: Settings, headers: list[tuple[bytes, bytes]]) -> None:
    """Load and unload need the admin key; without one configured they are refused (403)."""
    check_admin(headers, settings.admin_key)


async def load_model(plane: DataPlane, name: str) -> None:
    """Load (or reload) ``name`` from the repository; the old versions go once they are done."""
    registry = plane.registry
    old = registry.models.get(name)
    try:
        await anyio.to_thread.run_sync(registry.reload, name)
    except ConfigError as exc:  # the model's files are wrong: Triton answers 400 too
        raise BadRequest(exc.message) from exc
    if old is not None:  # the fresh versions serve now: free the old ones once they are done
        for mv in old.versions.values():
            await retire(mv)


async def unload_model(plane: DataPlane, name: str) -> None:
    """Stop serving ``name`` (404 when unknown); its versions go once they are done."""
    registry = plane.registry
    old = registry.model(name)  # 404 when unknown
    registry.unload(name)
    for mv in old.versions.values():
        await retire(mv)


@router.post("/models/{name}/load")
async def load(request: Request, name: str) -> Response:
    guard(request.app.state.settings, request.scope["headers"])
    await load_model(plane_of(request), name)
    return json_response({})


@router.post("/models/{name}/unload")
async def unload(request: Request, name: str) -> Response:
    guard(request.app.state.settings, request.scope["headers"])
    await unload_model(plane_of(request), name)
    return json_response({})
