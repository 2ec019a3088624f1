"""``modelport.asgi:app`` for ASGI servers run by hand, as the tutorial's Render command does::

    gunicorn modelport.asgi:app -w 2 -k uvicorn_worker.UvicornWorker --bind 0.0.0.0:$PORT

The app is built from the environment (``MODELPORT_*``) when first asked for, not at import,
and its models are loaded then: with gunicorn's ``--preload`` that happens once in the master,
and the workers share the models' memory copy-on-write.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]  # noqa: F822  (built on first access by __getattr__)


def __getattr__(name: str) -> Any:
    if name == "app":
        from modelport.server.app import loaded_app
        from modelport.settings import Settings

        application = loaded_app(Settings())
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
