"""The tutorial's protocol: ``GET /health`` in the tutorial's shape, readiness, and the model
listing. Its prediction routes (``POST /predict`` and friends) are served by
:mod:`modelport.protocols.predict` on the fast path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelport._version import __version__
from modelport.core.redact import redact
from modelport.core.registry import ModelVersion, Registry, RegistryModel
from modelport.protocols._http import json_response, plane_of

__all__ = ["model_info", "router"]

router = APIRouter()


def _version_info(mv: ModelVersion) -> dict[str, Any]:
    return {
        "version": mv.version,
        "state": mv.state.value,
        "runtime": mv.loaded.runtime_name if mv.loaded else mv.card.runtime,
        "artifact": mv.artifact.name,
        "load_seconds": round(mv.load_seconds, 3) if mv.load_seconds is not None else None,
        "error": redact(mv.error) if mv.error else None,
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
        **({"source": model.source} if model.source is not None else {}),
    }


@router.get("/health", summary="Liveness, in the tutorial's shape")
async def health(request: Request) -> dict[str, Any]:
    registry = plane_of(request).registry
    default = registry.models.get(registry.default_model or "")
    return {
        "status": "healthy",
        "model_loaded": bool(default and default.ready),
        "ready": registry.ready,
        "version": __version__,
    }


@router.get("/ready", summary="Readiness: 200 once every model is loaded, else 503")
async def ready(request: Request) -> Response:
    """``outcomes`` says how recording is doing; it fails readiness only with
    ``MODELPORT_OUTCOMES_REQUIRED`` (serving does not depend on the outcome store)."""
    registry = plane_of(request).registry
    waiting = [
        {
            "model": mv.name,
            "version": mv.version,
            "state": mv.state.value,
            "error": redact(mv.error) if mv.error else None,
        }
        for model in registry.models.values()
        for mv in model.versions.values()
        if mv.loaded is None
    ]
    outcomes = request.app.state.outcomes.health.snapshot()
    ok = registry.ready and (
        outcomes["state"] in ("ok", "off") or not request.app.state.settings.outcomes_required
    )
    body = {"ready": ok, "not_ready": waiting, "outcomes": outcomes}
    return json_response(body, status_code=200 if ok else 503)


@router.get("/models", summary="Every model: versions, readiness and signature")
async def list_models(request: Request) -> dict[str, Any]:
    registry = plane_of(request).registry
    return {"models": [model_info(registry, m) for m in registry.models.values()]}


@router.get("/models/{name}", summary="One model: versions, readiness and signature")
async def get_model(request: Request, name: str) -> dict[str, Any]:
    registry = plane_of(request).registry
    return model_info(registry, registry.model(name))
