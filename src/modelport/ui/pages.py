"""The HTML shells of the pages and the headers they are served with.

A shell carries no model data: only the server's title (escaped), where its routes are (the
ASGI ``root_path``) and whether an inference key is needed, as ``data-`` attributes of ``<body>``.
Its scripts build the rest from JSON with DOM calls (``textContent``, never ``innerHTML``).

Every page is served with a Content-Security-Policy that allows scripts only from the server
itself and no inline script at all, and sends no request to another origin:

* the playground and status pages: nothing but ``'self'`` (and ``data:``/``blob:`` images, for
  the preview of an image being uploaded);
* the docs pages: the same, except that inline styles are allowed, which Swagger UI and ReDoc
  set as they render (ReDoc's search also runs in a ``blob:`` worker).

``frame-ancestors`` is left open on purpose: Hugging Face Spaces shows the app in a frame, and
the pages hold no admin action to be clicked through one.
"""

from __future__ import annotations

import html
from typing import Literal

from modelport.ui.assets import Asset

__all__ = [
    "DOCS_HEADERS",
    "PAGE_HEADERS",
    "docs_page",
    "page",
    "redoc_page",
]

Page = Literal["playground", "status"]

_COMMON = "object-src 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    f"connect-src 'self'; {_COMMON}"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    f"img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; {_COMMON}"
)
_SAFE = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_HEADERS = {**_SAFE, "Content-Security-Policy": PAGE_CSP}
DOCS_HEADERS = {**_SAFE, "Content-Security-Policy": DOCS_CSP}

_TITLES = {"playground": "playground", "status": "status"}


def _url(prefix: str, name: str, assets: dict[str, Asset]) -> str:
    """An asset's URL with its content hash (cacheable for good); escaped for an attribute."""
    asset = assets.get(name)
    version = f"?v={asset.digest}" if asset is not None else ""
    return html.escape(f"{prefix}/{name}{version}")


def _head(title: str, links: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n{links}</head>\n"
    )


def page(
    kind: Page, *, title: str, root: str, key_required: bool, assets: dict[str, Asset]
) -> bytes:
    """The shell of the playground or of a status page (the model is in the path)."""
    prefix = f"{root}/ui/assets"
    links = (
        f'<link rel="stylesheet" href="{_url(prefix, "style.css", assets)}">\n'
        f'<link rel="icon" href="{_url(prefix, "favicon.svg", assets)}">\n'
        f'<script defer src="{_url(prefix, "common.js", assets)}"></script>\n'
        f'<script defer src="{_url(prefix, f"{kind}.js", assets)}"></script>\n'
    )
    body = (
        f'<body data-page="{kind}" data-root="{html.escape(root)}" '
        f'data-title="{html.escape(title)}" data-key="{"required" if key_required else "none"}">\n'
        '<header class="bar"><a class="brand" id="brand"></a><nav id="nav"></nav></header>\n'
        '<main id="app"><noscript>This page needs JavaScript. The API and its documentation '
        "are at /docs.</noscript></main>\n</body>\n</html>\n"
    )
    return (_head(f"{title} {_TITLES[kind]}", links) + body).encode()


def docs_page(*, title: str, root: str, openapi_url: str, assets: dict[str, Asset]) -> bytes:
    """Swagger UI, from modelport's own copy, started by ``swagger-init.js``."""
    prefix = f"{root}/docs/assets"
    links = (
        f'<link rel="stylesheet" href="{_url(prefix, "swagger-ui.css", assets)}">\n'
        f'<link rel="icon" href="{_url(prefix, "favicon.png", assets)}">\n'
        f'<script defer src="{_url(prefix, "swagger-ui-bundle.js", assets)}"></script>\n'
        f'<script defer src="{_url(prefix, "swagger-init.js", assets)}"></script>\n'
    )
    body = (
        f'<body data-openapi="{html.escape(root + openapi_url)}">\n'
        '<div id="swagger-ui"></div>\n</body>\n</html>\n'
    )
    return (_head(f"{title} - Swagger UI", links) + body).encode()


def redoc_page(*, title: str, root: str, openapi_url: str, assets: dict[str, Asset]) -> bytes:
    """ReDoc, from modelport's own copy; it starts itself on the ``<redoc>`` element."""
    prefix = f"{root}/docs/assets"
    links = (
        f'<link rel="icon" href="{_url(prefix, "favicon.png", assets)}">\n'
        f'<script defer src="{_url(prefix, "redoc.standalone.js", assets)}"></script>\n'
    )
    body = (
        f'<body>\n<redoc spec-url="{html.escape(root + openapi_url)}" '
        'hide-download-button="false"></redoc>\n</body>\n</html>\n'
    )
    return (_head(f"{title} - ReDoc", links) + body).encode()
