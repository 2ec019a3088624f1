"""KServe V1 protocol: ``/v1/models``, ``/v1/models/{m}``, ``POST /v1/models/{m}:predict``.

Instances are rows (lists in signature order) or objects with named fields; answers are
``{"predictions": [...]}`` (class names for classifiers whose card names them). Errors answer
``{"error": ...}``: 400 for bad input, 404 for an unknown model, 503 when not loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelport.core.dataplane import DataPlane
from modelport.core.registry import LoadedModel
from modelport.errors import BadRequest, InvalidInput
from modelport.protocols._http import (
    Call,
    Reply,
    check_instances,
    json_response,
    plane_of,
    serve,
)

if TYPE_CHECKING:
    from modelport.settings import Settings

__all__ = ["predict", "router"]

router = APIRouter(prefix="/v1", tags=["KServe V1"])


def _instances(body: bytes, settings: Settings) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise BadRequest('body must be an object with "instances" or "inputs"')
    for key in ("instances", "inputs"):
        if key in payload:
            value = payload[key]
            if not isinstance(value, list):
                raise BadRequest(f'"{key}" must be a list, got {type(value).__name__}')
            if not value:
                raise BadRequest(f'"{key}" is empty')
            check_instances(len(value), settings)
            return value
    raise BadRequest('expected "instances" or "inputs" holding a list of rows or objects')


def _rows(plane: DataPlane, model: LoadedModel, instances: list[Any]) -> np.ndarray:
    if all(isinstance(item, dict) for item in instances):
        return plane.records_to_rows(model, instances, prefix=("instances",))
    if any(isinstance(item, dict) for item in instances):
        raise BadRequest("instances mix objects and rows; send one kind")
    if model.signature.image is not None:  # bare images: base64 strings or nested lists
        records = [{"image": item} for item in instances]
        return plane.records_to_rows(model, records, prefix=("instances",))
    width = len(model.signature.inputs)
    if width == 1 and not any(isinstance(item, list) for item in instances):
        instances = [[item] for item in instances]  # one-feature models take bare values
    if any(not isinstance(item, list) or len(item) != width for item in instances):
        raise BadRequest(
            f"each instance must be a row of {width} values "
            f"({', '.join(model.signature.names)}) or an object with those keys"
        )
    table = np.empty((len(instances), width), dtype=object)
    table[:] = instances
    return plane.check_rows(model, table)


async def predict(call: Call) -> Reply:
    """``POST /v1/models/{name}:predict`` (served by the pipeline: :mod:`.routes`)."""
    plane = call.plane
    model = plane.route(call.name)
    try:
        rows = _rows(plane, model, _instances(call.body, call.settings))
        result = await plane.infer(model, rows)
    except InvalidInput as exc:
        raise BadRequest(exc.message) from exc
    headers = {"X-Model-Name": result.model, "X-Model-Version": str(result.version)}
    return Reply({"predictions": result.labels()}, headers)


@router.post("/models/{name}:predict")
async def predict_route(request: Request, name: str) -> Response:
    return await serve(request, predict, name, None)


@router.get("/models")
async def list_models(request: Request) -> dict[str, list[str]]:
    return {"models": list(plane_of(request).registry.models)}


@router.get("/models/{name}")
async def model_status(request: Request, name: str) -> Response:
    model = plane_of(request).registry.model(name)
    return json_response(
        {"name": model.name, "ready": model.ready}, status_code=200 if model.ready else 503
    )
