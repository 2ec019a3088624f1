"""The OpenAPI document: the fixed routes plus, for each loaded model, a typed
``/models/<name>/predict`` (and the bare ``/predict`` for the default model) with its real field
names, bounds, descriptions and a working example, so Swagger's "Try it out" just works.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from modelport.core.registry import LoadedModel, Registry
from modelport.core.schemas import batch_request_model, batch_response_model, response_model

__all__ = ["install_openapi"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown model or version"},
    413: {"description": "Body too large"},
    422: {"description": "Input that does not fit the model's signature; names field and rule"},
    503: {"description": "Model not loaded (yet, or its load failed)"},
}


def _endpoint(request: type[BaseModel]) -> Callable[..., Coroutine[Any, Any, None]]:
    async def endpoint(body: Any) -> None:  # documentation only: never mounted
        return None

    parameter = inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=request)
    endpoint.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    return endpoint


def _doc_route(path: str, model: LoadedModel, summary: str, batch: int = 0) -> APIRoute:
    description = model.card.description or f"Predict with model {model.name!r}."
    request: type[BaseModel] = model.request
    answer: Any = response_model(model.signature)
    if batch:
        request = batch_request_model(model.name, model.request, model.signature, batch)
        answer = batch_response_model(model.name, answer)
        description = f"Up to {batch} instances in one request, answered in order. {description}"
    return APIRoute(
        path,
        _endpoint(request),
        methods=["POST"],
        response_model=answer,
        summary=summary,
        description=description,
        tags=["predict"],
        responses=_ERRORS,
        operation_id=f"predict_{path.strip('/').replace('/', '_')}",
    )


def _model_routes(registry: Registry, batch: int) -> list[APIRoute]:
    routes: list[APIRoute] = []
    for name, model in registry.models.items():
        version = model.versions.get(model.default_version)
        if version is None or version.loaded is None:
            continue
        loaded = version.loaded
        prefixes = (
            ["", f"/models/{name}"] if name == registry.default_model else [f"/models/{name}"]
        )
        for prefix in prefixes:
            default = " (default model)" if not prefix else ""
            routes.append(_doc_route(f"{prefix}/predict", loaded, f"Predict: {name}{default}"))
            routes.append(
                _doc_route(f"{prefix}/predict/batch", loaded, f"Batch: {name}{default}", batch)
            )
    return routes


def install_openapi(app: FastAPI, registry: Registry, batch_limit: int) -> None:
    """Replace ``app.openapi`` with one that documents every loaded model.

    The document follows every load, reload, rollout and unload: it is rebuilt when the
    registry's generation has moved since it was last built, and served from the cache otherwise.
    """
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        key = (registry.generation, registry.default_model)
        if cache.get("key") != key:
            cache["key"] = key
            cache["doc"] = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*_model_routes(registry, batch_limit), *app.routes],
            )
        doc: dict[str, Any] = cache["doc"]
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
