"""The admin API of experiments (:mod:`modelport.outcomes.experiments`); the admin key, as every
``/admin`` route.

| method | path | does |
|---|---|---|
| GET | ``/admin/experiments`` | every experiment (``?model=`` for one model's), newest first |
| POST | ``/admin/experiments/{m}`` | start: ``{name, traffic?, metric?}`` (traffic set live) |
| POST | ``/admin/experiments/{m}/stop`` | stop the running one (``?name=``: only that one) |

The reports are read at ``GET /experiments/{m}`` (the running experiment), ``?experiment=NAME`` or
``/experiments/{m}/{name}`` (:mod:`.outcomes`). A rollout, rollback or traffic change while an
experiment runs answers with a ``warning`` and is noted in the experiment's ``events``
(:func:`note_change`, called by :mod:`.admin`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from modelport.core.validation import invalid_input
from modelport.errors import Conflict
from modelport.outcomes import experiments
from modelport.outcomes.experiments import Experiment, ExperimentIn
from modelport.outcomes.service import Outcomes
from modelport.protocols._http import (
    error_responses,
    json_response,
    plane_of,
    read_body,
    require_admin,
)
from modelport.traffic.state import StateWatcher

__all__ = ["note_change", "router"]


router = APIRouter(
    prefix="/admin/experiments",
    tags=["Admin"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)


def _outcomes(request: Request) -> Outcomes:
    outcomes: Outcomes = request.app.state.outcomes
    return outcomes


async def note_change(request: Request, model: str, change: str, **details: Any) -> str | None:
    """Note a traffic change in ``model``'s running experiment; the warning to answer with, or
    ``None`` when no experiment runs (or predictions are not recorded)."""
    outcomes = _outcomes(request)
    store = outcomes.store
    if store is None:
        return None
    noted = await outcomes.call(lambda: experiments.add_event(store, model, change, **details))
    if noted is None:
        return None
    return experiments.change_warning(noted.name, model, change)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by the definitions (an OpenAPI request
    body cannot carry ``$defs``: ReDoc and schemathesis cannot resolve them there)."""
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(dict(defs[ref.removeprefix("#/$defs/")]))
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


@router.get("")
async def listed(request: Request, model: str | None = Query(None, max_length=256)) -> Response:
    store = _outcomes(request).require()
    found = await _outcomes(request).call(lambda: experiments.listed(store, model))
    return json_response([e.model_dump(mode="json") for e in found])


@router.post(
    "/{model}",
    summary="Start an experiment (and set its traffic policy)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(ExperimentIn.model_json_schema())}},
        }
    },
)
async def start(request: Request, model: str) -> Response:
    try:
        spec = ExperimentIn.model_validate_json(await read_body(request) or b"null")
    except ValidationError as exc:
        raise invalid_input(exc) from exc
    outcomes = _outcomes(request)
    store = outcomes.require()
    plane_of(request).registry.model(model)  # 404 for an unknown model
    traffic = request.app.state.traffic
    if spec.traffic is None:
        spec = spec.model_copy(update={"traffic": traffic.policy(model)})
    else:
        current = await outcomes.call(lambda: experiments.running(store, model))
        if current is not None:  # refuse before touching the traffic
            raise Conflict(f"experiment {current.name!r} of {model!r} is running: stop it first")
        traffic.set_policy(model, spec.traffic)  # 400 when it names a version not loaded
        watcher: StateWatcher = request.app.state.state_watcher
        watcher.publish(model, {"traffic": spec.traffic})
    started: Experiment = await outcomes.call(lambda: experiments.start(store, model, spec))
    return json_response(started.model_dump(mode="json"), status_code=201)


@router.post("/{model}/stop", summary="Stop the running experiment")
async def stop(
    request: Request, model: str, name: str | None = Query(None, max_length=64)
) -> Response:
    outcomes = _outcomes(request)
    store = outcomes.require()
    stopped = await outcomes.call(lambda: experiments.stop(store, model, name))
    return json_response(stopped.model_dump(mode="json"))
