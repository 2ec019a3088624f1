"""The tutorial's protocol, served unchanged: ``POST /predict`` and ``GET /health``, plus the
per-model routes ``/models/{name}[/versions/{version}]/predict`` and ``GET /models``.

Answers keep the tutorial's exact shape: ``{"prediction", "probability", "probabilities"}`` for
classifiers (probabilities rounded to 4 places), ``{"prediction"}`` for regressors.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelport._version import __version__
from modelport.answers import answers
from modelport.dataplane import DataPlane
from modelport.errors import InvalidInput, PayloadTooLarge
from modelport.protocols._http import json_response, parse_version, read_body
from modelport.registry import ModelVersion, Registry, RegistryModel

__all__ = ["model_info", "router"]

router = APIRouter()


def _plane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.dataplane
    return plane


async def _predict(request: Request, name: str | None, version: int | None) -> Response:
    plane = _plane(request)
    model = plane.version(name, version)
    rows = plane.parse_json(model, await read_body(request))
    result = await plane.infer(model, rows)
    headers = {"X-Model-Name": result.model, "X-Model-Version": str(result.version)}
    return json_response(answers(result)[0], headers=headers)


def _instances(body: bytes, limit: int) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from exc
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise InvalidInput('send {"instances": [...]}: a non-empty list of objects')
    if len(instances) > limit:
        raise PayloadTooLarge(
            f"{len(instances)} instances is more than the limit of {limit} per request"
        )
    return instances


async def _predict_batch(request: Request, name: str | None, version: int | None) -> Response:
    plane = _plane(request)
    model = plane.version(name, version)
    limit = request.app.state.settings.max_batch_instances
    instances = _instances(await read_body(request), limit)
    rows = plane.records_to_rows(model, instances, prefix=("body", "instances"))
    result = await plane.infer(model, rows)
    headers = {"X-Model-Name": result.model, "X-Model-Version": str(result.version)}
    body = {
        "model_name": result.model,
        "model_version": result.version,
        "predictions": answers(result),
    }
    return json_response(body, headers=headers)


@router.post("/predict", include_in_schema=False)
async def predict(request: Request) -> Response:
    return await _predict(request, None, None)


@router.post("/models/{name}/predict", include_in_schema=False)
async def predict_model(request: Request, name: str) -> Response:
    return await _predict(request, name, None)


@router.post("/models/{name}/versions/{version}/predict", include_in_schema=False)
async def predict_version(request: Request, name: str, version: str) -> Response:
    return await _predict(request, name, parse_version(version))


@router.post("/predict/batch", include_in_schema=False)
async def predict_batch(request: Request) -> Response:
    return await _predict_batch(request, None, None)


@router.post("/models/{name}/predict/batch", include_in_schema=False)
async def predict_model_batch(request: Request, name: str) -> Response:
    return await _predict_batch(request, name, None)


@router.post("/models/{name}/versions/{version}/predict/batch", include_in_schema=False)
async def predict_version_batch(request: Request, name: str, version: str) -> Response:
    return await _predict_batch(request, name, parse_version(version))


def _version_info(mv: ModelVersion) -> dict[str, Any]:
    return {
        "version": mv.version,
        "state": mv.state.value,
        "runtime": mv.loaded.runtime_name if mv.loaded else mv.card.runtime,
        "artifact": mv.artifact.name,
        "load_seconds": round(mv.load_seconds, 3) if mv.load_seconds is not None else None,
        "error": mv.error,
    }


def model_info(registry: Registry, model: RegistryModel) -> dict[str, Any]:
    default = model.versions.get(model.default_version)
    signature = default.loaded.signature if default and default.loaded else None
    return {
        "name": model.name,
        "description": model.card.description,
        "default": model.name == registry.default_model,
        "ready": model.ready,
        "default_version": model.default_version,
        "versions": [_version_info(mv) for mv in model.versions.values()],
        "signature": signature.model_dump(mode="json", exclude_none=True) if signature else None,
    }


@router.get("/health", summary="Liveness, in the tutorial's shape")
async def health(request: Request) -> dict[str, Any]:
    registry = _plane(request).registry
    default = registry.models.get(registry.default_model or "")
    return {
        "status": "healthy",
        "model_loaded": bool(default and default.ready),
        "ready": registry.ready,
        "version": __version__,
    }


@router.get("/ready", summary="Readiness: 200 once every model is loaded, else 503")
async def ready(request: Request) -> Response:
    registry = _plane(request).registry
    waiting = [
        {"model": mv.name, "version": mv.version, "state": mv.state.value, "error": mv.error}
        for model in registry.models.values()
        for mv in model.versions.values()
        if mv.loaded is None
    ]
    ok = registry.ready
    return json_response({"ready": ok, "not_ready": waiting}, status_code=200 if ok else 503)


@router.get("/models", summary="Every model: versions, readiness and signature")
async def list_models(request: Request) -> dict[str, Any]:
    registry = _plane(request).registry
    return {"models": [model_info(registry, m) for m in registry.models.values()]}


@router.get("/models/{name}", summary="One model: versions, readiness and signature")
async def get_model(request: Request, name: str) -> dict[str, Any]:
    registry = _plane(request).registry
    return model_info(registry, registry.model(name))
