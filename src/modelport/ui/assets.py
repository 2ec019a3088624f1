"""Static assets, read once and kept in memory with their gzip form and ETag.

Two sets, served under two prefixes:

* :func:`playground_assets`: this package's ``static/`` folder (the playground's and the status
  page's JS and CSS), turned off with the pages (``MODELPORT_UI=false``);
* :func:`docs_assets`: Swagger UI and ReDoc, from the ``fastapi-offline`` package (a base
  dependency: its wheel ships ``swagger-ui-bundle.js``, ``swagger-ui.css`` and
  ``redoc.standalone.js``), plus this package's ``docs/`` folder (the scripts that start them,
  so the docs pages need no inline script). ``/docs`` keeps these whatever the setting.

A page links an asset as ``<name>?v=<hash>``: a URL whose content never changes, so the answer
may be cached for a year; a request without the right hash is told to revalidate.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["Asset", "docs_assets", "playground_assets"]

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
#: the files of fastapi-offline that the docs pages use
_DOCS_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
#: URLs in those files that would leave the server, and what they become: ReDoc's sidebar
#: shows Redocly's logo from a CDN (an image whose error handler hides it: ``data:,`` fails)
_OFFLINE = {"redoc.standalone.js": ((b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,"),)}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file: its bytes (and gzip form, when that is smaller), type and content hash."""

    body: bytes
    gzipped: bytes | None
    content_type: str
    digest: str  # 12 hex digits of the content's sha256

    @classmethod
    def of(cls, name: str, body: bytes) -> Asset:
        content_type = _TYPES.get(Path(name).suffix, "application/octet-stream")
        packed = gzip.compress(body, compresslevel=6, mtime=0)
        smaller = packed if content_type.startswith("text/") and len(packed) < len(body) else None
        return cls(body, smaller, content_type, hashlib.sha256(body).hexdigest()[:12])

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def _folder(name: str) -> dict[str, Asset]:
    folder = resources.files("modelport.ui") / name
    return {
        entry.name: Asset.of(entry.name, entry.read_bytes())
        for entry in folder.iterdir()
        if entry.is_file() and Path(entry.name).suffix in _TYPES
    }


@functools.cache
def playground_assets() -> dict[str, Asset]:
    """The playground's and the status page's scripts and style sheet, by file name."""
    return _folder("static")


def _offline_folder() -> Path | None:
    """fastapi-offline's ``static`` folder, found without importing the package (which imports
    FastAPI); ``None`` when it is not installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@functools.cache
def docs_assets() -> dict[str, Asset]:
    """Swagger UI, ReDoc and the scripts that start them, by file name."""
    found = _folder("docs")
    folder = _offline_folder()
    if folder is not None:
        for name in _DOCS_FILES:
            path = folder / name
            if path.is_file():
                body = path.read_bytes()
                for online, offline in _OFFLINE.get(name, ()):
                    body = body.replace(online, offline)
                found[name] = Asset.of(name, body)
    return found
