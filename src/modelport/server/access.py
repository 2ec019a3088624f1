"""The access log: one line per answered request on the ``modelport.access`` logger.

Its records carry ``request_id``, ``method``, ``path``, ``endpoint``, ``status``, ``duration_ms``,
``model``, ``version``, ``variant`` and ``client`` as attributes (the JSON formatter writes them
all). Through :mod:`logging` a line costs the event loop about 30 µs on this project's 2-core
machine (a third of a small model's throughput): the record, its dictionary, the caller's frame,
the handler's checks. So while the server's own handler (:class:`~.logs.ServerHandler`, with
modelport's text or JSON formatter) is the only one the record would reach, :func:`write` makes
the formatter's line itself and writes it under the handler's lock: the same bytes, in the same
order among the other log lines, for well under half the cost (about 13 µs). Whenever anything
else would see the record (a handler or filter a user or a test added, a level on the handler, a
record factory, an integration that patched :mod:`logging`), it gets a real one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from modelport.core.context import RequestInfo
from modelport.server.logs import JsonFormatter, ServerHandler, TextFormatter

__all__ = ["MESSAGE", "access_log", "sole_handler", "write"]

access_log = logging.getLogger("modelport.access")
MESSAGE = '%s "%s %s" %d %.1fms'  # client, method, path, status, milliseconds
_FORMATTERS = (TextFormatter, JsonFormatter)


def write(
    method: str,
    path: str,
    client: Any,
    endpoint: str,
    status: int,
    seconds: float,
    info: RequestInfo,
) -> None:
    """Log one answered request (the caller checked that ``access_log`` logs INFO)."""
    where = f"{client[0]}:{client[1]}" if client else None
    fields = {
        "request_id": info.request_id,
        "method": method,
        "path": path,
        "endpoint": endpoint,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "model": info.model,
        "version": info.version,
        "variant": info.variant,
        "client": where,
    }
    args = (where or "-", method, path, status, seconds * 1000)
    handler = sole_handler()
    if handler is not None:
        created = time.time()
        msecs = int((created - int(created)) * 1000) + 0.0  # as a record works them out
        formatter: Any = handler.formatter
        try:
            line = formatter.access_line(access_log.name, created, msecs, MESSAGE % args, fields)
        except Exception:  # the line could not be made (say, a datefmt strftime refuses):
            # the record's own path reports it, as logging reports its errors
            pass
        else:
            _emit(handler, line, args, fields)
            return
    access_log.info(MESSAGE, *args, extra=fields, stacklevel=2)


def _emit(handler: ServerHandler, line: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
    """``line`` written as the handler's ``emit`` writes a record's, and an error reported as it
    reports one (with the record made then)."""
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except RecursionError:
        raise
    except Exception:
        record = access_log.makeRecord(
            access_log.name, logging.INFO, __file__, 0, MESSAGE, args, None, extra=fields
        )
        handler.handleError(record)
    finally:
        handler.release()


def _stdlib(*functions: Any) -> bool:
    """Whether these are still the standard library's own (no integration patched them: Sentry's
    replaces ``Logger.callHandlers``, and would miss the line)."""
    return all(getattr(f, "__module__", None) == "logging" for f in functions)


def sole_handler() -> ServerHandler | None:
    """The server's handler when an INFO record of the access log would reach it and nothing
    else would see it: no filter on the logger, no other handler on the way up, none of its own,
    no record factory or logging class of someone else's."""
    if (
        access_log.filters
        or access_log.disabled
        or type(access_log) is not logging.Logger
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return None
    found: logging.Handler | None = None
    logger: logging.Logger | None = access_log
    while logger is not None:
        for handler in logger.handlers:
            if found is not None or type(handler) is not ServerHandler:
                return None
            found = handler
        if not logger.propagate:
            break
        logger = logger.parent
    if (
        not isinstance(found, ServerHandler)
        or found.filters
        or found.level > logging.INFO
        or type(found.formatter) not in _FORMATTERS
    ):
        return None
    kind, logger_kind = type(found), logging.Logger
    if not _stdlib(
        logger_kind.callHandlers, logger_kind.handle, logger_kind._log, logger_kind.makeRecord,
        kind.handle, kind.emit, kind.format, kind.flush,
    ):  # fmt: skip
        return None
    return found
