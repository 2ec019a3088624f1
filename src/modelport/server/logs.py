"""Logging setup for the server: text or JSON lines on stderr, level from settings.

Nothing here runs at import: :func:`configure_logging` is called by
:func:`modelport.server.run.serve`.
Every record logged while a request is served carries its request id (from
:func:`modelport.core.context.current`); the access log's records (:mod:`modelport.server.observe`)
also
carry method, path, endpoint, status, duration_ms, model, version, variant and client.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from typing import Any

import orjson

from modelport.core import context
from modelport.settings import Settings

__all__ = ["FIELDS", "JsonFormatter", "TextFormatter", "configure_logging", "gunicorn_logger"]

FIELDS = (
    "request_id",
    "method",
    "path",
    "endpoint",
    "status",
    "duration_ms",
    "model",
    "version",
    "variant",
    "client",
)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    found = {key: getattr(record, key) for key in FIELDS if hasattr(record, key)}
    if "request_id" not in found:
        info = context.current()
        if info is not None:
            found["request_id"] = info.request_id
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid, then the request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        payload: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            **_fields(record),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message`` plus ``request_id=...`` (and what served it)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        extra = [
            f"{key}={fields[key]}"
            for key in ("request_id", "model", "version", "variant")
            if fields.get(key) not in (None, "")
        ]
        return " ".join([line, *extra])


def configure_logging(settings: Settings) -> logging.Handler:
    """Send every record to stderr in ``settings.log_format`` at ``settings.log_level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


def gunicorn_logger(settings: Settings) -> type[Any]:
    """gunicorn's logger class, writing JSON lines too when ``settings.log_format`` is json.

    The uvicorn workers log through the same handlers, so every line of the server is JSON.
    """
    from gunicorn.glogging import Logger

    class Logs(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            if settings.log_format == "json":
                for handler in self.error_log.handlers:
                    handler.setFormatter(JsonFormatter())

    return Logs
