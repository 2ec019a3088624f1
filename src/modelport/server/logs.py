"""Logging setup for the server: text or JSON lines on stderr, level from settings.

Nothing here runs at import: :func:`configure_logging` is called by
:func:`modelport.server.run.serve`.
Every record logged while a request is served carries its request id (from
:func:`modelport.core.context.current`); the access log's records (:mod:`modelport.server.access`)
also carry method, path, endpoint, status, duration_ms, model, version, variant and client.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

import orjson

from modelport.core import context
from modelport.settings import Settings

__all__ = [
    "FIELDS",
    "JsonFormatter",
    "ServerHandler",
    "TextFormatter",
    "configure_logging",
    "gunicorn_logger",
]

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
        payload = _payload(
            record.created, record.levelname, record.name, record.getMessage(), record.process,
            _fields(record),
        )  # fmt: skip
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # a traceback formatted elsewhere (the outcome writer process)
            payload["exception"] = record.exc_text
        return orjson.dumps(payload, default=str).decode()

    def access_line(
        self, name: str, created: float, msecs: float, message: str, fields: dict[str, Any]
    ) -> str:
        """What :meth:`format` makes of an INFO record of logger ``name`` created at ``created``
        with ``message`` and ``fields`` (every one of :data:`FIELDS`, in that order), made without
        the record (:mod:`.access`)."""
        pid = os.getpid() if logging.logProcesses else None  # as a record reads it
        level = logging.getLevelName(logging.INFO)
        payload = _payload(created, level, name, message, pid, fields)
        return orjson.dumps(payload, default=str).decode()


def _payload(
    created: float, level: str, name: str, message: str, pid: int | None, fields: dict[str, Any]
) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(created, tz=timezone.utc)
    return {
        "time": stamp.isoformat(timespec="milliseconds"),
        "level": level.lower(),
        "logger": name,
        "message": message,
        "pid": pid,
        **fields,
    }


class TextFormatter(logging.Formatter):
    """``time level logger: message`` plus ``request_id=...`` (and what served it)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._kept: tuple[tuple[Any, ...], str] | None = None  # (what it depends on, time text)

    def format(self, record: logging.LogRecord) -> str:
        return _with_fields(super().format(record), _fields(record))

    def access_line(
        self, name: str, created: float, msecs: float, message: str, fields: dict[str, Any]
    ) -> str:
        """What :meth:`format` makes of an INFO record of logger ``name`` created at ``created``
        (``msecs`` its milliseconds) with ``message`` and ``fields``, made without the record
        (:mod:`.access`)."""
        level = logging.getLevelName(logging.INFO)
        return _with_fields(f"{self._time(created, msecs)} {level} {name}: {message}", fields)

    def _time(self, created: float, msecs: float) -> str:
        """:meth:`formatTime`'s text for a record created at ``created``; the part before the
        milliseconds is worked out once a second (and again when the settings it uses change)."""
        datefmt, converter = self.datefmt, self.converter
        key = (int(created), converter, datefmt, self.default_time_format)
        kept = self._kept
        if kept is None or kept[0] != key:
            shown = time.strftime(datefmt or self.default_time_format, converter(created))
            kept = self._kept = (key, shown)  # one assignment: never half updated
        text = kept[1]
        if not datefmt and self.default_msec_format:
            text = self.default_msec_format % (text, msecs)
        return text


def _with_fields(line: str, fields: dict[str, Any]) -> str:
    extra = [
        f"{key}={fields[key]}"
        for key in ("request_id", "model", "version", "variant")
        if fields.get(key) not in (None, "")
    ]
    return " ".join([line, *extra])


class ServerHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs. While it is the only one an access log
    record would reach, :mod:`.access` writes its lines to it straight (no record is built)."""


def configure_logging(settings: Settings) -> logging.Handler:
    """Send every record to stderr in ``settings.log_format`` at ``settings.log_level``."""
    handler = ServerHandler(sys.stderr)
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
