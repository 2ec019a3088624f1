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

from modelport.registry import LoadedModel, Registry
from modelport.schemas import response_model

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


def _doc_route(path: str, model: LoadedModel, summary: str) -> APIRoute:
    description = model.card.description or f"Predict with model {model.name!r}."
    return APIRoute(
        path,
        _endpoint(model.request),
        methods=["POST"],
        response_model=response_model(model.signature),
        summary=summary,
        description=description,
        tags=["predict"],
        responses=_ERRORS,
        operation_id=f"predict_{path.strip('/').replace('/', '_')}",
    )


def _model_routes(registry: Registry) -> list[APIRoute]:
    routes: list[APIRoute] = []
    for name, model in registry.models.items():
        version = model.versions.get(model.default_version)
        if version is None or version.loaded is None:
            continue
        if name == registry.default_model:
            routes.append(_doc_route("/predict", version.loaded, f"Predict ({name}, default)"))
        routes.append(_doc_route(f"/models/{name}/predict", version.loaded, f"Predict ({name})"))
    return routes


def install_openapi(app: FastAPI, registry: Registry) -> None:
    """Replace ``app.openapi`` with one that documents every loaded model.

    The document is rebuilt only when loading has progressed since it was last built.
    """
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        key = tuple(
            (name, v, mv.state.value)
            for name, m in registry.models.items()
            for v, mv in m.versions.items()
        )
        if cache.get("key") != key:
            cache["key"] = key
            cache["doc"] = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*_model_routes(registry), *app.routes],
            )
        doc: dict[str, Any] = cache["doc"]
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
