"""Metrics of real servers: the sum over gunicorn workers, dead workers, the metrics port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.helpers import IRIS_ROW, free_port, running_server, wait_until_ready
from tests.observability.test_metrics import samples, total

pytestmark = pytest.mark.e2e

BATCH = 30


def _post(url: str) -> int:
    return httpx.post(f"{url}/predict", json=IRIS_ROW, timeout=30).status_code  # new connection


def _poll(condition, timeout_s: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _until_both_workers_predicted(url: str, log: Callable[[], str]) -> int:
    """Send predictions until two workers have answered some (else a sum proves nothing)."""
    sent = 0
    deadline = time.monotonic() + 60
    while len(_predicting_pids(log())) < 2:
        assert time.monotonic() < deadline, "one worker took every request"
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(_post, [url] * BATCH)) == [200] * BATCH
        sent += BATCH
    return sent


def _rss(pid: int) -> int:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _predicting_pids(log: str) -> set[int]:
    """The processes whose JSON access lines answered a prediction."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return {
        x["pid"] for x in lines if x["logger"] == "modelport.access" and x["path"] == "/predict"
    }


def _worker_pids(directory: Path) -> set[int]:
    master = int((directory / "master.pid").read_text())
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("counter_*.db")}
    return pids - {master}


def test_two_workers_report_the_sum_and_survive_a_dead_worker(repo: Path, tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    metrics_port = free_port()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "MODELPORT_METRICS_PORT": str(metrics_port),
        "MODELPORT_LOG_FORMAT": "json",
        "MODELPORT_ACCESS_LOG": "true",
    }
    args = [str(repo), "--workers", "2"]
    with running_server(args, tmp_path / "log", env=env) as server:
        sent = _until_both_workers_predicted(server.url, server.output)
        workers = _worker_pids(directory)
        assert workers == _predicting_pids(server.output())

        scrape = f"http://127.0.0.1:{metrics_port}/metrics"
        for _ in range(3):  # the master answers; every scrape sees every worker's requests
            text = httpx.get(scrape, timeout=10).text
            assert total(text, "modelport_requests_total", endpoint="/predict", code="200") == sent
        assert total(text, "modelport_inference_duration_seconds_count", model="iris") == sent
        for _ in range(3):  # the status page's reading sums every worker too, on any of them
            live = httpx.get(f"{server.url}/ui/status/iris", timeout=10).json()["live"]
            assert (live["requests"], live["latency_count"], live["errors"]) == (sent, sent, 0)
        assert samples(text, "modelport_models_loaded") == [3]
        rss = samples(text, "process_resident_memory_bytes")[0]  # master and workers summed
        pids = [server.process.pid, *workers]
        assert rss == pytest.approx(sum(_rss(pid) for pid in pids), rel=0.2)
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 404

        dead = min(workers)
        os.kill(dead, signal.SIGKILL)  # gunicorn's child_exit hook marks it dead
        _poll(lambda: not list(directory.glob(f"gauge_livesum_{dead}.db")))
        _poll(lambda: httpx.get(f"{server.url}/ready", timeout=5).status_code == 200)
        assert _post(server.url) == 200
        text = httpx.get(scrape, timeout=10).text
        assert total(text, "modelport_requests_total", endpoint="/predict", code="200") == sent + 1
        assert total(text, "modelport_requests_in_flight") == 0
    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "modelport.access"]
    assert len([line for line in access if line["path"] == "/predict"]) == sent + 1
    assert {line["logger"] for line in lines} >= {"modelport.access", "gunicorn.error"}


def test_a_fresh_run_starts_from_zero(repo: Path, tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for _ in range(2):  # the second run finds the first one's files and must not count them
        with running_server([str(repo), "--workers", "2"], tmp_path / "log", env=env) as server:
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert total(text, "modelport_requests_total", endpoint="/predict") == 0
            assert _post(server.url) == 200


def test_one_worker_serves_metrics_on_its_own_port(repo: Path, tmp_path: Path) -> None:
    metrics_port = free_port()
    env = {"MODELPORT_METRICS_PORT": str(metrics_port)}
    with running_server([str(repo)], tmp_path / "log", env=env) as server:
        assert _post(server.url) == 200
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert total(text, "modelport_requests_total", endpoint="/predict") == 1
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 404


def test_a_gunicorn_command_of_your_own_with_the_config_module(repo: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MODELPORT_MODELS": str(repo),
        "MODELPORT_LOG_FORMAT": "json",
        "MODELPORT_ACCESS_LOG": "true",
        "TMPDIR": str(tmp_path),  # where the run's metrics folder goes
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        *(str(gunicorn), "-c", "python:modelport.server.gunicorn_conf", "modelport.asgi:app"),
        *("-w", "2", "-k", "uvicorn_worker.UvicornWorker", "--bind", f"127.0.0.1:{port}"),
    ]
    log = tmp_path / "log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_ready(url, process)
        sent = _until_both_workers_predicted(url, lambda: log.read_text(errors="replace"))
        text = httpx.get(f"{url}/metrics", timeout=10).text
        assert total(text, "modelport_requests_total", endpoint="/predict", code="200") == sent
        assert len(list(tmp_path.glob("modelport-metrics-*"))) == 1
    finally:
        process.terminate()
        process.wait(30)
    assert not list(tmp_path.glob("modelport-metrics-*")), "the run's folder is removed at exit"


def test_own_gunicorn_config_refuses_a_metrics_port_it_cannot_open() -> None:
    env = {**os.environ, "MODELPORT_METRICS_PORT": "9999"}
    done = subprocess.run(
        [sys.executable, "-c", "import modelport.server.gunicorn_conf"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "MODELPORT_METRICS_PORT works with `modelport serve --workers N`" in done.stderr
