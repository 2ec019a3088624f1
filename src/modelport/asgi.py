"""``modelport.asgi:app`` for ASGI servers run by hand, as the tutorial's Render command does::

    gunicorn modelport.asgi:app -w 2 -k uvicorn_worker.UvicornWorker --bind 0.0.0.0:$PORT

The app is built from the environment (``MODELPORT_*``) when first asked for, not at import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]  # noqa: F822  (built on first access by __getattr__)


def __getattr__(name: str) -> Any:
    if name == "app":
        from modelport.app import create_app

        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
