"""Real server processes on loopback: uvicorn, gunicorn with uvicorn workers, and signals."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.helpers import IRIS_ROW, free_port, running_server, wait_until_ready, write_fake_model

pytestmark = pytest.mark.e2e


def test_tutorial_client_against_a_real_server(repo: Path, tmp_path: Path) -> None:
    with running_server([str(repo)], tmp_path / "log") as server:
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "healthy"
        assert health["model_loaded"] is True
        response = httpx.post(f"{server.url}/predict", json=IRIS_ROW)
        assert response.status_code == 200
        assert response.json() == {
            "prediction": "setosa",
            "probability": pytest.approx(0.9817, abs=1e-3),
            "probabilities": pytest.approx([0.9817, 0.0183, 0.0], abs=1e-3),
        }
        bad = httpx.post(f"{server.url}/predict", json={**IRIS_ROW, "sepal_length": 11})
        assert bad.status_code == 422
        assert "sepal_length: Input should be less than or equal to 10" in bad.json()["error"]
        assert httpx.post(f"{server.url}/predict", content=b"{oops").status_code == 422
        huge = httpx.post(f"{server.url}/predict", content=b"x" * (5 * 1024 * 1024))
        assert huge.status_code == 413
        assert httpx.get(f"{server.url}/health").status_code == 200  # still up after all that


@pytest.mark.parametrize("workers", ["1", "2"], ids=["uvicorn", "gunicorn"])
def test_sigterm_finishes_in_flight_requests(tmp_path: Path, workers: str) -> None:
    flag = tmp_path / "predicting"
    write_fake_model(
        tmp_path / "repo", "slow", parameters={"delay_s": 1.0, "predict_flag": str(flag)}
    )
    args = [str(tmp_path / "repo"), "--workers", workers]
    with running_server(args, tmp_path / "log") as server:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                httpx.post, f"{server.url}/predict", json={"x0": 1, "x1": 1}, timeout=30
            )
            deadline = time.monotonic() + 30
            while not flag.exists():  # wait until the request is inside the model
                assert time.monotonic() < deadline
                time.sleep(0.01)
            code = server.stop()
            response = pending.result()
        assert response.status_code == 200
        assert response.json()["prediction"] == 0
        assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after draining
        assert "Finished server process" in server.output()
        if workers == "2":
            assert code == 0
            assert "Shutting down: Master" in server.output()


def test_gunicorn_workers(repo: Path, tmp_path: Path) -> None:
    with running_server([str(repo), "--workers", "2"], tmp_path / "log") as server:
        for _ in range(20):
            assert httpx.post(f"{server.url}/predict", json=IRIS_ROW).status_code == 200
        code = server.stop()
    assert code == 0
    assert server.output().count("Booting worker") == 2
    assert "Shutting down: Master" in server.output()
    # loaded once, in the master before it forked, not once per worker
    assert server.output().count("loaded iris v1") == 1


def test_the_tutorials_render_command(repo: Path, tmp_path: Path) -> None:
    """gunicorn modelport.asgi:app -w 2 -k uvicorn_worker.UvicornWorker --bind 0.0.0.0:$PORT"""
    port = free_port()
    env = {**os.environ, "MODELPORT_MODELS": str(repo), "PORT": str(port)}
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "modelport.asgi:app",
        "-w",
        "2",
        "-k",
        "uvicorn_worker.UvicornWorker",
        "--bind",
        f"127.0.0.1:{port}",
    ]
    with (tmp_path / "log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", process)
            answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=IRIS_ROW).json()
            assert answer["prediction"] == "setosa"
        finally:
            process.terminate()
            assert process.wait(30) == 0


def test_overload_answers_503_with_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    write_fake_model(
        tmp_path / "repo",
        "slow",
        parameters={"delay_s": 0.2},
        batching={"max_batch_size": 1, "max_queue": 2},
    )
    with (
        running_server([str(tmp_path / "repo")], tmp_path / "log") as server,
        concurrent.futures.ThreadPoolExecutor(12) as pool,
    ):
        responses = list(
            pool.map(
                lambda _: httpx.post(f"{server.url}/predict", json={"x0": 1, "x1": 1}, timeout=30),
                range(12),
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}
    assert statuses.count(200) >= 3
    rejected = [r for r in responses if r.status_code == 503]
    assert all(1 <= int(r.headers["retry-after"]) <= 4 for r in rejected)
    assert all("queue is full" in r.json()["error"] for r in rejected)


def test_request_timeout_answers_504(tmp_path: Path) -> None:
    write_fake_model(tmp_path / "repo", "slow", parameters={"delay_s": 2.0})
    env = {"MODELPORT_REQUEST_TIMEOUT": "0.2"}
    with running_server([str(tmp_path / "repo")], tmp_path / "log", env=env) as server:
        response = httpx.post(f"{server.url}/predict", json={"x0": 1, "x1": 1}, timeout=30)
        assert response.status_code == 504
        assert "did not answer within 0.2 s" in response.json()["error"]
        assert httpx.get(f"{server.url}/health").status_code == 200
