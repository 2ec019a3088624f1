"""Model-file trust against real servers: a forged sidecar never runs its payload, a tampered
model fails alone, and readiness follows MODELPORT_STRICT_READINESS."""

from __future__ import annotations

import contextlib
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from modelport.cli.examples import train_example
from modelport.model.integrity import write_sha256
from modelport.model.pins import Pins
from tests.helpers import IRIS_ROW, Server

pytestmark = pytest.mark.e2e


class Payload:
    """What an attacker writes: unpickling it creates ``marker`` (any code would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture
def forged(tmp_path: Path) -> tuple[Path, Path]:
    """iris and wine, imported (pinned); then wine replaced by a payload with a matching
    sidecar, as whoever can write its version folder can do."""
    repo = tmp_path / "models"
    train_example("iris", repo)
    train_example("wine", repo)
    marker = tmp_path / "payload-ran"
    artifact = repo / "wine" / "1" / "model.joblib"
    artifact.write_bytes(pickle.dumps(Payload(marker)))
    write_sha256(artifact)
    return repo, marker


@contextlib.contextmanager
def live_server(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A real server, once it answers liveness (readiness may well be 503 here)."""
    server = Server(args, log, env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.process.poll() is None, server.output()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/v2/health/live", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("workers", "strict", "ready"),
    [("1", "true", 503), ("2", "false", 200)],
    ids=["uvicorn-strict", "gunicorn-lenient"],
)
def test_a_forged_sidecar_is_refused_and_its_payload_never_runs(
    forged: tuple[Path, Path], tmp_path: Path, workers: str, strict: str, ready: int
) -> None:
    repo, marker = forged
    env = {"MODELPORT_STRICT_READINESS": strict, "MODELPORT_ADMIN_KEY": "admin-k"}
    with live_server([str(repo), "--workers", workers], tmp_path / "log", env) as server:
        url = server.url
        assert httpx.post(f"{url}/models/iris/predict", json=IRIS_ROW).status_code == 200
        refused = httpx.post(f"{url}/models/wine/predict", json={})
        assert refused.status_code == 503
        assert "wine/1/model.joblib: it changed since it was pinned" in refused.json()["error"]
        assert str(tmp_path) not in refused.text
        assert httpx.get(f"{url}/ready").status_code == ready
        assert httpx.get(f"{url}/v2/health/ready").status_code == ready
        index = {e["name"]: e for e in httpx.post(f"{url}/v2/repository/index").json()}
        assert index["wine"]["state"] == "UNAVAILABLE"
        assert "changed since it was pinned (sha256 <sha256>" in index["wine"]["reason"]
        assert index["iris"]["state"] == "READY"
        # loading it again refuses it again, even with the admin key; without it, 401
        load = f"{url}/v2/repository/models/wine/load"
        assert httpx.post(load).status_code == 401
        assert httpx.post(load, headers={"X-Admin-Key": "admin-k"}).status_code == 400
    assert not marker.exists()
    log = server.output()
    assert "failed to load wine v1" in log
    assert f"modelport pin {repo}" in log  # the exact command, in the log only


def test_pinning_it_is_the_fix_the_log_names(forged: tuple[Path, Path], tmp_path: Path) -> None:
    """`modelport pin` refuses what changed since it was pinned, unless --force."""
    repo, marker = forged
    pin = [sys.executable, "-m", "modelport", "pin", str(repo)]
    done = subprocess.run(pin, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout
    assert "refused" in done.stdout
    assert "changed since it was pinned" in " ".join(done.stdout.split())
    assert "unchanged" in done.stdout  # iris
    assert not marker.exists()  # pinning hashes, never loads


def test_the_only_model_refused_fails_fast(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    train_example("iris", repo)
    Pins.default(repo).lock.unlink()  # a repository from elsewhere: sidecars, no trusted pins
    command = [sys.executable, "-m", "modelport", "serve", str(repo), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "refusing to load" in message
    assert f"modelport pin {repo}" in message
    pinned = subprocess.run(
        [sys.executable, "-m", "modelport", "pin", str(repo)], capture_output=True, text=True
    )
    assert pinned.returncode == 0, pinned.stdout
    assert "pinned" in pinned.stdout
    with live_server([str(repo)], tmp_path / "log") as server:
        assert httpx.get(f"{server.url}/ready").status_code == 200
        assert httpx.post(f"{server.url}/predict", json=IRIS_ROW).status_code == 200
