"""The admin API: rollout, rollback, version load/unload and live traffic policies.

Every route needs the admin key (``MODELPORT_ADMIN_KEY``, sent as ``Authorization: Bearer <key>``
or ``X-Admin-Key``); without one configured the API answers 403 ``admin API disabled``.

| method | path | does |
|---|---|---|
| GET | ``/admin/models/{m}`` | versions, serving version, rollback target, policy, shadow stats |
| POST | ``/admin/models/{m}/rollout/{v}`` | load + warm ``v`` beside the serving one, then switch |
| POST | ``/admin/models/{m}/rollback`` | switch back to the version that served before |
| POST | ``/admin/models/{m}/versions/{v}/load`` | load + warm ``v`` without switching |
| POST | ``/admin/models/{m}/versions/{v}/unload`` | stop routing to ``v``, drain, unload |
| PUT | ``/admin/models/{m}/traffic`` | set the traffic policy (validated; ``null`` clears it) |
| POST | ``/admin/models/{m}/canary/advance`` | next canary step; past the last, promote |
| POST | ``/admin/models/{m}/canary/abort`` | all traffic back to the baseline |

Changes are also written to the model's rollout state file, which every worker applies
(:mod:`modelport.traffic.state`). While an experiment of the model runs, a change of its traffic
(rollout, rollback, policy, canary step) answers with a ``warning`` and is noted in the
experiment's events (:mod:`.experiments`).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from modelport.core.validation import invalid_input
from modelport.errors import BadRequest, Conflict
from modelport.model.policy import TrafficPolicy
from modelport.protocols._http import (
    error_responses,
    json_response,
    parse_version,
    plane_of,
    read_body,
    require_admin,
    traffic_of,
)
from modelport.protocols.experiments import note_change
from modelport.protocols.tutorial import model_info
from modelport.traffic import rollout
from modelport.traffic.state import StateWatcher

__all__ = ["router"]


router = APIRouter(
    prefix="/admin",
    tags=["Admin"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(400, 401, 403, 404, 409, 422),
)


def _publish(request: Request, name: str, **changes: object) -> None:
    """Tell the other workers (through the state file); this worker has applied it."""
    watcher: StateWatcher = request.app.state.state_watcher
    watcher.publish(name, changes)


def _status(request: Request, name: str) -> dict[str, Any]:
    plane, traffic = plane_of(request), traffic_of(request)
    model = plane.registry.model(name)
    policy = traffic.policy(name)
    shadow = traffic.shadows.get(name)
    return {
        **model_info(plane.registry, model),
        "previous_version": model.previous,
        "traffic": policy.model_dump(mode="json") if policy else None,
        "shadow": shadow.as_dict() if shadow else None,
        "canary_events": [e for e in traffic.monitor.events if e["model"] == name],
    }


@router.get("/models/{name}")
async def status(request: Request, name: str) -> dict[str, Any]:
    return _status(request, name)


async def _rollout(request: Request, name: str, version: int, change: str) -> Response:
    registry = plane_of(request).registry
    result = await anyio.to_thread.run_sync(rollout.rollout_sync, registry, name, version)
    _publish(request, name, active=result.version, previous=result.previous)
    answer = result.as_dict()
    warning = await note_change(request, name, change, version=result.version)
    return json_response({**answer, "warning": warning} if warning else answer)


@router.post("/models/{name}/rollout/{version}")
async def rollout_version(request: Request, name: str, version: str) -> Response:
    return await _rollout(request, name, parse_version(version), "rollout")


@router.post("/models/{name}/rollback")
async def rollback(request: Request, name: str) -> Response:
    target = rollout.rollback_target(plane_of(request).registry, name)
    return await _rollout(request, name, target, "rollback")


@router.post("/models/{name}/versions/{version}/load")
async def load_version(request: Request, name: str, version: str) -> Response:
    registry = plane_of(request).registry
    number = parse_version(version)
    await anyio.to_thread.run_sync(rollout.prepare, registry, name, number)
    return json_response({"model": name, "version": number, "loaded": True})


@router.post("/models/{name}/versions/{version}/unload")
async def unload_version(request: Request, name: str, version: str) -> Response:
    plane = plane_of(request)
    number = parse_version(version)
    policy = traffic_of(request).policy(name)
    if policy is not None and number in policy.versions():
        raise Conflict(f"the traffic policy of {name!r} routes to v{number}; change it first")
    timeout = request.app.state.settings.graceful_timeout
    drained = await rollout.drain_and_unload(plane.registry, name, number, timeout)
    return json_response({"model": name, "version": number, "drained": drained})


def _policy(body: bytes) -> TrafficPolicy | None:
    try:
        raw = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if raw is None:
        return None
    try:
        return TrafficPolicy.model_validate(raw)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


async def _changed(request: Request, name: str, change: str) -> Response:
    """The model's status after a traffic ``change``, with a warning while an experiment runs."""
    answer = _status(request, name)
    warning = await note_change(request, name, change, traffic=answer["traffic"])
    return json_response({**answer, "warning": warning} if warning else answer)


@router.put("/models/{name}/traffic")
async def set_traffic(request: Request, name: str) -> Response:
    policy = _policy(await read_body(request))
    traffic_of(request).set_policy(name, policy)
    _publish(request, name, traffic=policy)
    return await _changed(request, name, "traffic policy change")


@router.post("/models/{name}/canary/advance")
async def advance_canary(request: Request, name: str) -> Response:
    _publish(request, name, **traffic_of(request).advance(name))
    return await _changed(request, name, "canary step")


@router.post("/models/{name}/canary/abort")
async def abort_canary(request: Request, name: str) -> Response:
    _publish(request, name, **traffic_of(request).abort(name))
    return await _changed(request, name, "canary abort")
