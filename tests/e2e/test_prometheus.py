"""A real Prometheus scrapes a real 2-worker modelport; rate(), histogram_quantile() and the
dashboard's queries answer through its HTTP API, and it loads the shipped rules."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from modelport.observability import dashboard
from tests.helpers import IRIS_ROW, free_port, running_server
from tests.observability.test_monitoring import RULES

pytestmark = pytest.mark.e2e

N = 40


@pytest.fixture(scope="module")
def stack(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (.ci/run installs Debian's package)")
    tmp = tmp_path_factory.mktemp("prometheus")
    with running_server([str(repo), "--workers", "2"], tmp / "modelport.log") as server:
        port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "modelport",
                    "static_configs": [{"targets": [server.url.removeprefix("http://")]}],
                }
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        command = [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with (tmp / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            try:
                url = f"http://127.0.0.1:{port}"
                _until(lambda: _ready(url), "Prometheus is ready")
                yield server.url, url
            finally:
                process.terminate()
                process.wait(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _until(condition: Any, what: str, timeout_s: float = 45) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert reply["status"] == "success", (expr, reply)
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def _value(prometheus: str, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def traffic(stack: tuple[str, str]) -> tuple[str, str]:
    modelport, prometheus = stack
    _until(lambda: _value(prometheus, 'up{job="modelport"}') == 1, "the target is up")
    total = 'sum(modelport_requests_total{endpoint="/predict"})'
    with httpx.Client(base_url=modelport, timeout=30) as client:
        # a first request, scraped, so that rate() sees the series grow from a known sample
        assert client.post("/predict", json=IRIS_ROW).status_code == 200
        _until(lambda: _value(prometheus, total) == 1, "Prometheus has scraped the first request")
        for _ in range(N - 1):
            assert client.post("/predict", json=IRIS_ROW).status_code == 200
        assert client.post("/predict", json={"sepal_length": 99}).status_code == 422
    _until(lambda: _value(prometheus, total) == N + 1, f"Prometheus has scraped {N + 1} requests")
    return stack


def test_rate_and_quantiles_through_the_query_api(traffic: tuple[str, str]) -> None:
    _, prometheus = traffic
    rate = _value(prometheus, 'sum(rate(modelport_requests_total{code="200"}[30s]))')
    assert rate is not None
    assert rate > 0
    p99 = _value(
        prometheus,
        "histogram_quantile(0.99, sum by (le) "
        "(rate(modelport_request_duration_seconds_bucket[30s])))",
    )
    assert p99 is not None
    assert 0 < p99 < 30
    assert not math.isnan(p99)
    errors = _value(prometheus, 'sum(modelport_requests_total{code="422"})')
    assert errors == 1
    assert _value(prometheus, "sum(modelport_inference_duration_seconds_count)") == N
    assert _value(prometheus, "min(modelport_model_ready)") == 1


def test_every_dashboard_query_parses_and_the_main_ones_have_data(
    traffic: tuple[str, str],
) -> None:
    _, prometheus = traffic
    empty = []
    for expr in dashboard.queries():
        if not query(prometheus, expr.replace("$__rate_interval", "1m")):
            empty.append(expr)
    # only the error ratios may be empty: no 5xx was served, and rate() needs two samples of
    # the one 4xx series (it appeared once, with its single request)
    assert all("code=~" in e for e in empty), empty


def test_prometheus_loaded_and_evaluates_the_rules(traffic: tuple[str, str]) -> None:
    _, prometheus = traffic

    def evaluated() -> list[dict[str, Any]]:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return [r for g in groups for r in g["rules"]]

    _until(
        lambda: all(r.get("lastEvaluation", "0001")[:4] != "0001" for r in evaluated()), "rules ran"
    )
    rules = evaluated()
    assert {r["name"] for r in rules if r["type"] == "alerting"} >= {
        "ModelportHighErrorRate",
        "ModelportLatencyP99High",
        "ModelportModelNotReady",
        "ModelportQueueSaturated",
        "ModelportDown",
    }
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
    firing = [r["name"] for r in rules if r["type"] == "alerting" and r["state"] != "inactive"]
    assert firing == []
