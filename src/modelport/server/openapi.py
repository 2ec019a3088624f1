"""The OpenAPI document: the fixed routes plus, for each loaded model, a typed
``/models/<name>/predict`` (and the bare ``/predict`` for the default model) with its real field
names, bounds, descriptions and a working example, so Swagger's "Try it out" just works.

Every operation declares each error status it can answer, with the one error body
(:func:`declare_errors`): from its router (admin, repository, outcomes), from the pipeline (413,
503), from a path parameter (404) and, for the prediction routes of
:mod:`modelport.protocols.routes`, the statuses every prediction can answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from modelport.core.registry import LoadedModel, Registry
from modelport.core.schemas import batch_request_model, batch_response_model, response_model
from modelport.protocols._http import ErrorBody
from modelport.protocols.routes import STATUSES, match

__all__ = ["declare_errors", "install_openapi"]

# every request can be refused for its size (the pipeline, 413) or while the server is not
# ready or overloaded (503)
_EVERYWHERE = (413, 503)
_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorBody"}
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


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


def _statuses(path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses of an operation: its router's, the pipeline's, and those of its kind
    (a path parameter may name no model or version; a prediction route answers :data:`STATUSES`).
    """
    declared = {int(s) for s in operation.get("responses", {}) if s.isdigit() and int(s) >= 400}
    statuses = declared | set(_EVERYWHERE)
    if "{" in path:
        statuses |= {404, 422}
    if match(path) is not None:
        statuses |= set(STATUSES)
    return statuses


def declare_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare on every operation each error status it can answer, with the one error body
    (:class:`~modelport.protocols._http.ErrorBody`), FastAPI's 422 schema replaced by it."""
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(path, operation)):
                responses[str(status)] = {
                    "description": HTTPStatus(status).phrase,
                    "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                }
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    for name in _FASTAPI_SCHEMAS:
        schemas.pop(name, None)
    return doc


def _path_examples(doc: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """A served model (and its default version) as the example of every ``{name}``, ``{model}``
    and ``{version}``: Swagger's "Try it out" and schema-driven testers start from a real one."""
    name = registry.default_model
    model = registry.models.get(name) if name is not None else None
    if name is None or model is None:  # none, or unloaded through the repository API
        return doc
    examples = {"name": name, "model": name, "version": str(model.default_version)}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in examples:
                    parameter["example"] = examples[parameter["name"]]
    return doc


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
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*_model_routes(registry, batch_limit), *app.routes],
            )
            cache["doc"] = _path_examples(declare_errors(doc), registry)
        built: dict[str, Any] = cache["doc"]
        return built

    app.openapi = openapi  # type: ignore[method-assign]
