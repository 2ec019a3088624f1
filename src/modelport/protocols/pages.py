"""The routes of the pages (:mod:`modelport.ui`): ordinary FastAPI routes, outside the
prediction table, so they cost a prediction nothing.

| path | what | with ``MODELPORT_UI=false`` |
|---|---|---|
| ``GET /`` | the playground: every model, a form from its signature | 404 |
| ``GET /status/{model}`` | a model's status page | 404 |
| ``GET /ui/status/{model}`` | its JSON: versions, traffic policy, live request counters | 404 |
| ``GET /ui/assets/{file}`` | the pages' JS and CSS | 404 |
| ``GET /docs``, ``GET /redoc`` | Swagger UI and ReDoc, every asset served from here | kept |
| ``GET /docs/assets/{file}`` | their assets | kept |

``/ui/status/{model}`` needs an inference key (or the admin key) when inference keys are set,
like ``/experiments``. No page shows an admin action.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from modelport.errors import PageNotFound
from modelport.protocols._http import json_response, plane_of, require_reader, traffic_of
from modelport.protocols.auth import inference_keys
from modelport.protocols.tutorial import model_info
from modelport.ui.assets import Asset, docs_assets, playground_assets
from modelport.ui.pages import DOCS_HEADERS, PAGE_HEADERS, Page, docs_page, page, redoc_page

__all__ = ["docs_router", "ui_router"]

ui_router = APIRouter(include_in_schema=False)
docs_router = APIRouter(include_in_schema=False)
_FOREVER = "public, max-age=31536000, immutable"


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _html(body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, headers=headers, media_type="text/html; charset=utf-8")


def _asset(request: Request, assets: dict[str, Asset], name: str) -> Response:
    """A file with its ETag (304 when the browser has it) and gzip when accepted; cached for
    good when asked for by its content hash."""
    asset = assets.get(name)
    if asset is None:
        raise PageNotFound(f"no asset {name!r}")
    fresh = request.query_params.get("v") == asset.digest
    headers = {
        "ETag": asset.etag,
        "Cache-Control": _FOREVER if fresh else "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = asset.gzipped, "gzip"
    return Response(body, headers=headers, media_type=asset.content_type)


def _page(request: Request, kind: Page) -> Response:
    settings = request.app.state.settings
    body = page(
        kind,
        title=settings.title,
        root=_root(request),
        key_required=bool(inference_keys(settings.inference_key)),
        assets=playground_assets(),
    )
    return _html(body, PAGE_HEADERS)


@ui_router.get("/")
async def playground(request: Request) -> Response:
    return _page(request, "playground")


@ui_router.get("/status/{name}")
async def status_page(request: Request, name: str) -> Response:
    plane_of(request).registry.model(name)  # 404 for an unknown model
    return _page(request, "status")


@ui_router.get("/ui/status/{name}", dependencies=[Depends(require_reader)])
async def status(request: Request, name: str) -> Response:
    registry = plane_of(request).registry
    model = registry.model(name)
    traffic = traffic_of(request)
    policy, shadow = traffic.policy(name), traffic.shadows.get(name)
    metrics = request.app.state.metrics
    live: dict[str, Any] | None = None
    if metrics is not None:
        from modelport.observability.live import model_traffic

        live = model_traffic(metrics, name)
    settings = request.app.state.settings
    return json_response(
        {
            **model_info(registry, model),
            "traffic": policy.model_dump(mode="json", exclude_none=True) if policy else None,
            "shadow": shadow.as_dict() if shadow else None,
            "live": live,
            "outcomes": settings.outcomes,
        },
        headers={"Cache-Control": "no-store"},
    )


@ui_router.get("/ui/assets/{name}")
async def ui_asset(request: Request, name: str) -> Response:
    return _asset(request, playground_assets(), name)


@docs_router.get("/docs")
async def swagger(request: Request) -> Response:
    app = request.app
    body = docs_page(
        title=app.title, root=_root(request), openapi_url=app.openapi_url, assets=docs_assets()
    )
    return _html(body, DOCS_HEADERS)


@docs_router.get("/redoc")
async def redoc(request: Request) -> Response:
    app = request.app
    body = redoc_page(
        title=app.title, root=_root(request), openapi_url=app.openapi_url, assets=docs_assets()
    )
    return _html(body, DOCS_HEADERS)


@docs_router.get("/docs/assets/{name}")
async def docs_asset(request: Request, name: str) -> Response:
    return _asset(request, docs_assets(), name)
