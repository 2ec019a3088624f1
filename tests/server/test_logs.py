"""The access log (one record per request) and the JSON and text formatters."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from modelport.core.context import RequestInfo, use
from modelport.server.logs import JsonFormatter, TextFormatter, configure_logging
from modelport.settings import Settings
from tests.helpers import IRIS_ROW


def test_one_access_record_per_request_with_id_model_status_latency(
    make_client,  # type: ignore[no-untyped-def]
    repo: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        make_client(repo, access_log=True) as client,
        caplog.at_level(logging.INFO, "modelport.access"),
    ):
        client.post("/predict", json=IRIS_ROW, headers={"X-Request-Id": "abc-123"})
        client.post("/predict", json={"sepal_length": -1})
        client.get("/metrics")  # scrapes are not logged
    records = [r for r in caplog.records if r.name == "modelport.access"]
    assert [(r.path, r.status) for r in records] == [("/predict", 200), ("/predict", 422)]  # type: ignore[attr-defined]
    first = records[0]
    assert first.request_id == "abc-123"  # type: ignore[attr-defined]
    assert (first.model, first.version, first.endpoint) == ("iris", 1, "/predict")  # type: ignore[attr-defined]
    assert first.duration_ms > 0  # type: ignore[attr-defined]
    assert len(records[1].request_id) == 32  # type: ignore[attr-defined]


def test_access_log_off_writes_no_access_records(
    make_client,  # type: ignore[no-untyped-def]
    repo: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        make_client(repo, access_log=False) as client,
        caplog.at_level(logging.INFO, "modelport.access"),
    ):
        assert client.post("/predict", json=IRIS_ROW).status_code == 200
    assert not [r for r in caplog.records if r.name == "modelport.access"]


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "modelport.access", logging.INFO, __file__, 1, "%s done", ("x",), None
    )
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_request_fields() -> None:
    line = JsonFormatter().format(_record(request_id="r1", status=200, model="iris", version=1))
    payload = json.loads(line)
    assert payload["message"] == "x done"
    assert payload["level"] == "info"
    assert payload["logger"] == "modelport.access"
    assert (payload["request_id"], payload["status"], payload["model"]) == ("r1", 200, "iris")
    assert payload["time"].endswith("+00:00")


def test_application_logs_inside_a_request_carry_its_id() -> None:
    with use(RequestInfo("req-7", model="wine")):
        payload = json.loads(JsonFormatter().format(_record()))
        text = TextFormatter().format(_record())
    assert payload["request_id"] == "req-7"
    assert text.endswith("x done request_id=req-7")


def test_configure_logging_sets_level_and_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        handler = configure_logging(Settings(log_format="json", log_level="warning"))
        logging.getLogger("modelport.test").info("hidden")
        logging.getLogger("modelport.test").warning("shown %d", 1)
        handler.flush()
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    lines = capsys.readouterr().err.strip().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["shown 1"]
