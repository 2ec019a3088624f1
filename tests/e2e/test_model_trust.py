"""Model-file trust against real servers: a forged sidecar never runs its payload, a tampered
model of any format or a model whose card does not read fails alone, and readiness follows
MODELPORT_STRICT_READINESS."""

from __future__ import annotations

import contextlib
import json
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from modelport.cli.examples import train_example
from modelport.cli.pin import pin_repository
from modelport.model.integrity import write_sha256
from modelport.model.pins import Pins
from modelport.server.app import create_app
from modelport.settings import Settings
from tests.helpers import IRIS_ROW, Server, write_fake_model

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


def _tamper(artifact: Path) -> None:
    """Rewrite a model file as a still loadable model with other bytes (what a folder's writer
    could do): an ONNX graph with another doc string, a JSON or text model reformatted."""
    if artifact.suffix == ".onnx":
        import onnx

        graph = onnx.load(str(artifact))
        graph.doc_string = "tampered"
        onnx.save(graph, str(artifact))
    elif artifact.suffix == ".json":
        artifact.write_text(json.dumps(json.loads(artifact.read_text()), indent=1))
    else:
        artifact.write_text(artifact.read_text() + "\n")
    for side in artifact.parent.glob("*.sha256"):
        side.unlink()  # the writer removes the sidecar too: the lock outside still pins it


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """iris (healthy), ONNX, XGBoost and LightGBM models tampered after they were pinned, and
    a model whose card does not parse."""
    repo = tmp_path / "models"
    train_example("iris", repo)
    for framework in FORMATS:
        _tamper(train_example("iris", repo, framework=framework))
    write_fake_model(repo, "broken")
    (repo / "broken" / "modelport.yaml").write_text("runtime: [unclosed\n")
    return repo


FORMATS = {"onnx": "model.onnx", "xgboost": "model.json", "lightgbm": "model.txt"}


def test_tampered_files_of_every_format_and_a_bad_card_fail_alone(
    mixed: Path, tmp_path: Path
) -> None:
    """Strict readiness (the default): not ready, but iris serves; reloads and rollouts of
    the broken model are refused while iris keeps serving; the log names each."""
    admin = {"X-Admin-Key": "admin-k"}
    env = {"MODELPORT_ADMIN_KEY": "admin-k"}
    with live_server([str(mixed)], tmp_path / "log", env) as server:
        url = server.url
        assert httpx.post(f"{url}/predict", json=IRIS_ROW).status_code == 200  # iris: default
        for framework, file in FORMATS.items():
            refused = httpx.post(f"{url}/models/iris-{framework}/predict", json=IRIS_ROW)
            assert refused.status_code == 503, refused.text
            assert f"iris-{framework}/1/{file}: it changed since it was pinned" in refused.text
        models = {m["name"]: m for m in httpx.get(f"{url}/models").json()["models"]}
        assert "not valid YAML" in models["broken"]["versions"][0]["error"]
        index = {e["name"]: e for e in httpx.post(f"{url}/v2/repository/index").json()}
        assert "broken/modelport.yaml: not valid YAML" in index["broken"]["reason"]
        assert index["iris"]["state"] == "READY"
        assert httpx.get(f"{url}/ready").status_code == 503
        reload = httpx.post(f"{url}/v2/repository/models/broken/load", headers=admin)
        assert reload.status_code == 400, reload.text
        assert "not valid YAML" in reload.text
        rollout = httpx.post(f"{url}/admin/models/broken/rollout/1", headers=admin)
        assert rollout.status_code == 409, rollout.text
        assert rollout.json()["code"] == "card_error"
        reload = httpx.post(f"{url}/v2/repository/models/iris/load", headers=admin)
        assert reload.status_code == 200, reload.text  # beside the broken card
        assert httpx.post(f"{url}/models/iris/predict", json=IRIS_ROW).status_code == 200
        assert str(tmp_path) not in json.dumps(index)
    log = server.output()
    assert "failed to load broken v1" in log
    assert "not valid YAML" in log
    for framework in FORMATS:
        assert f"failed to load iris-{framework} v1" in log


def test_pin_records_every_format_and_lenient_readiness_serves(mixed: Path) -> None:
    """`modelport pin` refuses the changed files until --force, then they serve; with lenient
    readiness the server is ready beside the broken card."""
    pins = Pins.default(mixed)
    rows = {row.model: row for row in pin_repository(mixed, pins)}
    for framework in FORMATS:
        assert rows[f"iris-{framework}"].status == "refused"
        assert "changed since it was pinned" in rows[f"iris-{framework}"].detail
    assert rows["broken"].status == "refused"
    assert "not valid YAML" in rows["broken"].detail
    forced = {row.model: row.status for row in pin_repository(mixed, pins, force=True)}
    assert {forced[f"iris-{f}"] for f in FORMATS} == {"pinned"}
    locked = pins.read()
    assert {f"models/iris-{f}/1/{file}" for f, file in FORMATS.items()} <= set(locked)
    settings = Settings(models=mixed, strict_readiness=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for framework in FORMATS:
            answer = client.post(f"/models/iris-{framework}/predict", json=IRIS_ROW)
            assert answer.status_code == 200, answer.text
        assert client.get("/ready").status_code == 200
        assert client.post("/models/broken/predict", json={}).status_code == 503
