"""The access log's own line: the formatter's bytes without a record, written only while the
server's handler is the one thing a record would reach (:mod:`modelport.server.access`)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from modelport.core.context import RequestInfo
from modelport.server import access
from modelport.server.logs import JsonFormatter, ServerHandler, TextFormatter, configure_logging
from modelport.settings import Settings

FIELD_SETS = [
    {  # a prediction a model answered
        "request_id": "abc-123", "method": "POST", "path": "/predict", "endpoint": "/predict",
        "status": 200, "duration_ms": 0.213, "model": "iris", "version": 1, "variant": "stable",
        "client": "127.0.0.1:50000",
    },
    {  # refused before a model: no model, version or variant; no client (gRPC without a peer)
        "request_id": "r" * 32, "method": "GET", "path": "/v2/models/x/ready",
        "endpoint": "/v2/models/{name}/ready", "status": 404, "duration_ms": 12.5, "model": None,
        "version": None, "variant": None, "client": None,
    },
    {  # text that JSON escapes, an empty variant
        "request_id": "q", "method": "POST", "path": '/models/a"b\\c/predict',
        "endpoint": "/models/{name}/predict", "status": 503, "duration_ms": 0.0, "model": "a\"b",
        "version": 12, "variant": "", "client": "[::1]:1",
    },
]  # fmt: skip


def _same_line(formatter: logging.Formatter, fields: dict[str, Any], created: float) -> None:
    args = (fields["client"] or "-", fields["method"], fields["path"], fields["status"], 3.25)
    record = access.access_log.makeRecord(
        "modelport.access", logging.INFO, "observe.py", 1, access.MESSAGE, args, None,
        extra=fields,
    )  # fmt: skip
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    made = formatter.access_line(  # type: ignore[attr-defined]
        "modelport.access", created, record.msecs, access.MESSAGE % args, fields
    )
    assert made == formatter.format(record)  # (a JSON line's pid is this process's in both)


@pytest.mark.parametrize("kind", [TextFormatter, JsonFormatter], ids=["text", "json"])
@pytest.mark.parametrize("fields", FIELD_SETS, ids=["answered", "refused", "escaped"])
def test_the_line_is_what_the_formatter_makes_of_the_record(
    kind: type[logging.Formatter], fields: dict[str, Any]
) -> None:
    formatter = kind()
    for created in (1_790_000_000.0, 1_790_000_000.9995, 1_790_000_059.0421, 1_790_000_000.5):
        _same_line(formatter, fields, created)  # (seconds back and forth: the kept time text)


@pytest.mark.parametrize(
    "setting",
    ["level-name", "msec-format", "datefmt", "converter", "no-process"],
)
@pytest.mark.parametrize("kind", [TextFormatter, JsonFormatter], ids=["text", "json"])
def test_the_line_follows_loggings_settings_as_a_record_would(
    kind: type[logging.Formatter], setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    formatter = kind()
    _same_line(formatter, FIELD_SETS[0], 1_790_000_000.25)  # its time text kept
    if setting == "level-name":
        monkeypatch.setitem(logging._levelToName, logging.INFO, "INFORMATION")
    elif setting == "msec-format":
        monkeypatch.setattr(logging.Formatter, "default_msec_format", "%s.%03d")
    elif setting == "datefmt":
        formatter.datefmt = "%d/%m/%Y %H:%M:%S"
    elif setting == "converter":
        formatter.converter = time.gmtime  # type: ignore[method-assign,assignment]
    else:
        monkeypatch.setattr(logging, "logProcesses", False)
    _same_line(formatter, FIELD_SETS[0], 1_790_000_000.75)  # the same second


@pytest.fixture
def server_logging() -> Iterator[ServerHandler]:
    """modelport's own logging set up as ``modelport serve`` sets it up, writing to a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    handler = configure_logging(Settings(log_format="json"))
    assert isinstance(handler, ServerHandler)
    handler.setStream(io.StringIO())
    try:
        yield handler
    finally:
        root.handlers[:], root.level = saved


@contextlib.contextmanager
def alone(handler: ServerHandler) -> Iterator[None]:
    """Only the server's handler on the root, as in the server (pytest adds its own for each
    test's call)."""
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers[:] = [handler]
    try:
        yield
    finally:
        root.handlers[:] = saved


def _written(handler: ServerHandler) -> list[dict[str, Any]]:
    text = handler.stream.getvalue()  # type: ignore[attr-defined]
    return [json.loads(line) for line in text.splitlines()]


def _log(status: int = 200) -> None:
    info = RequestInfo("id-1", model="iris", version=2, variant="canary")
    access.write("POST", "/predict", ("10.0.0.1", 4000), "/predict", status, 0.0042, info)


def test_the_servers_own_handler_gets_the_line_in_order_with_the_others(
    server_logging: ServerHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []
    monkeypatch.setattr(access.access_log, "makeRecord", lambda *a, **k: made.append(a))
    with alone(server_logging):
        logging.getLogger("modelport.test").warning("before")
        _log()
        logging.getLogger("modelport.test").warning("after")
    lines = _written(server_logging)
    assert [line["message"] for line in lines] == [
        "before",
        '10.0.0.1:4000 "POST /predict" 200 4.2ms',
        "after",
    ]
    assert lines[1]["logger"] == "modelport.access"
    assert (lines[1]["model"], lines[1]["version"], lines[1]["variant"]) == ("iris", 2, "canary")
    assert lines[1]["duration_ms"] == 4.2
    assert made == []  # the access line made no record


LINE = '10.0.0.1:4000 "POST /predict" 200 4.2ms'


@pytest.mark.parametrize(
    "change",
    [
        "handler-on-the-access-log",
        "handler-on-modelport",
        "second-handler-on-root",
        "filter-on-the-access-log",
        "filter-on-the-handler",
        "patched-call-handlers",  # as Sentry's logging integration does
        "record-factory",
        "other-formatter",
        "handler-level",
        "not-propagated",
    ],
)
def test_anything_else_that_would_see_the_record_gets_a_real_one(
    server_logging: ServerHandler, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return True

    extra = logging.StreamHandler(io.StringIO())
    extra.addFilter(keep)
    undo: list[Any] = []
    if change == "handler-on-the-access-log":
        access.access_log.addHandler(extra)
        undo.append(lambda: access.access_log.removeHandler(extra))
    elif change == "handler-on-modelport":
        logging.getLogger("modelport").addHandler(extra)
        undo.append(lambda: logging.getLogger("modelport").removeHandler(extra))
    elif change == "filter-on-the-access-log":
        access.access_log.addFilter(keep)
        undo.append(lambda: access.access_log.removeFilter(keep))
    elif change == "filter-on-the-handler":
        server_logging.addFilter(keep)
    elif change == "patched-call-handlers":
        call_handlers = logging.Logger.callHandlers

        def patched(self: logging.Logger, record: logging.LogRecord) -> None:
            keep(record)
            call_handlers(self, record)

        monkeypatch.setattr(logging.Logger, "callHandlers", patched)
    elif change == "record-factory":
        factory = logging.getLogRecordFactory()

        def scrubbing(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            keep(record)
            return record

        logging.setLogRecordFactory(scrubbing)
        undo.append(lambda: logging.setLogRecordFactory(factory))
    elif change == "other-formatter":
        server_logging.setFormatter(logging.Formatter("%(message)s"))
    elif change == "handler-level":
        server_logging.setLevel(logging.WARNING)
    elif change == "not-propagated":
        monkeypatch.setattr(access.access_log, "propagate", False)
    with alone(server_logging):
        if change == "second-handler-on-root":
            logging.getLogger().addHandler(extra)
        try:
            assert access.sole_handler() is None
            _log()
        finally:
            for step in undo:
                step()
        if undo:  # the change taken back: the line goes straight to the handler again
            assert access.sole_handler() is server_logging
    written = server_logging.stream.getvalue()  # type: ignore[attr-defined]
    if change == "other-formatter":  # the user's formatter made the line
        assert written == LINE + "\n"
    elif change in ("handler-level", "not-propagated"):  # no handler takes an INFO record
        assert (seen, written) == ([], "")
    else:
        assert seen == [LINE]


class Failing(io.StringIO):
    """A stream whose ``write`` or ``flush`` fails (once: ``flush``)."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def write(self, text: str) -> int:
        if self.where == "write":
            raise OSError("no space left on device")
        return super().write(text)

    def flush(self) -> None:
        if self.where == "flush":
            self.where = ""
            raise BrokenPipeError("the reader went away")


@pytest.mark.parametrize("where", ["write", "flush"])
def test_a_stream_that_fails_is_reported_once_as_logging_reports_it(
    server_logging: ServerHandler, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    stream = Failing(where)
    server_logging.setStream(stream)
    with alone(server_logging):
        _log()  # never raises into the request
    report = capsys.readouterr().err
    assert report.count("--- Logging error ---") == 1
    assert "Arguments: ('10.0.0.1:4000', 'POST', '/predict', 200, 4.2)" in report  # its record
    assert stream.getvalue().count("modelport.access") == (where == "flush")  # never twice
