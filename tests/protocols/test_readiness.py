"""Readiness: strict by default (Triton's --strict-readiness), lenient on request, never with no
model; liveness answers whatever the models' state."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.settings import Settings
from tests.conftest import ClientFactory
from tests.helpers import write_fake_model

ROW = {"x0": 1, "x1": 2}
READINESS = ("/ready", "/v2/health/ready")
LIVENESS = ("/health", "/v2/health/live")


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    write_fake_model(tmp_path, "broken", parameters={"load_error": "weights are corrupt"})
    write_fake_model(tmp_path, "fine")
    return tmp_path


def test_strict_is_the_default() -> None:
    assert Settings().strict_readiness is True


@pytest.mark.parametrize(("strict", "status"), [(True, 503), (False, 200)])
def test_a_failed_model_beside_a_healthy_one(
    make_client: ClientFactory, mixed: Path, strict: bool, status: int
) -> None:
    with make_client(mixed, strict_readiness=strict) as client:
        for path in READINESS:
            assert client.get(path).status_code == status, path
        for path in LIVENESS:
            assert client.get(path).status_code == 200, path
        assert client.post("/models/fine/predict", json=ROW).status_code == 200
        failed = client.post("/models/broken/predict", json=ROW)
        assert failed.status_code == 503
        assert "weights are corrupt" in failed.json()["error"]
        listed = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert listed["broken"]["versions"][0]["state"] == "failed"
        assert listed["broken"]["versions"][0]["error"] == "weights are corrupt"
        index = {e["name"]: e for e in client.post("/v2/repository/index").json()}
        assert index["broken"] == {
            "name": "broken",
            "version": "1",
            "state": "UNAVAILABLE",
            "reason": "weights are corrupt",
        }
        assert index["fine"]["state"] == "READY"


@pytest.mark.parametrize("strict", [True, False])
def test_no_model_loaded_is_never_ready(
    make_client: ClientFactory, tmp_path: Path, strict: bool
) -> None:
    write_fake_model(tmp_path, "a")
    write_fake_model(tmp_path, "b", parameters={"load_error": "nope"})
    with make_client(tmp_path, strict_readiness=strict, admin_key="k") as client:
        client.headers["X-Admin-Key"] = "k"  # unload needs it
        assert client.post("/v2/repository/models/a/unload").status_code == 200
        for path in READINESS:
            assert client.get(path).status_code == 503, path
        health = client.get("/health")
        assert health.status_code == 200  # liveness: a restart would not bring a model back
        assert health.json()["ready"] is False
        assert client.get("/v2/health/live").status_code == 200


@pytest.mark.parametrize("strict", [True, False])
def test_unloading_every_model_makes_the_server_unready(
    make_client: ClientFactory, tmp_path: Path, strict: bool
) -> None:
    write_fake_model(tmp_path, "a")
    write_fake_model(tmp_path, "b")
    with make_client(tmp_path, strict_readiness=strict, admin_key="k") as client:
        client.headers["X-Admin-Key"] = "k"  # load and unload need it
        assert all(client.get(path).status_code == 200 for path in READINESS)
        for name in ("a", "b"):
            assert client.post(f"/v2/repository/models/{name}/unload").status_code == 200
        for path in READINESS:
            assert client.get(path).status_code == 503, path
        assert client.get("/health").json()["ready"] is False
        assert client.post("/v2/repository/models/a/load").status_code == 200
        assert client.get("/ready").status_code == 200


def test_unloading_the_failed_model_makes_a_strict_server_ready(
    make_client: ClientFactory, mixed: Path
) -> None:
    with make_client(mixed, admin_key="k") as client:
        client.headers["X-Admin-Key"] = "k"  # unload needs it
        assert client.get("/ready").status_code == 503
        assert client.post("/v2/repository/models/broken/unload").status_code == 200
        assert client.get("/ready").status_code == 200


def test_a_failed_rollout_does_not_make_the_server_unready(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """A rollout's candidate that fails to load stays out of serving; what serves still does."""
    folder = write_fake_model(tmp_path, "m", versions=(1,), version_policy={"specific": [1]})
    (folder / "2").mkdir()
    (folder / "2" / "model.fake").write_text("fake\n")
    (folder / "2" / "other.fake").write_text("two files: the card must choose")
    with make_client(tmp_path, admin_key="k") as client:
        answer = client.post("/admin/models/m/rollout/2", headers={"Authorization": "Bearer k"})
        assert answer.status_code == 409, answer.text
        assert client.get("/ready").status_code == 200


def test_reasons_hold_no_absolute_path_nor_hash(make_client: ClientFactory, tmp_path: Path) -> None:
    folder = write_fake_model(tmp_path, "m", runtime="sklearn")
    (folder / "1" / "model.fake").unlink()
    (folder / "1" / "model.joblib").write_bytes(b"not pinned anywhere")
    (folder / "1" / "model.joblib.sha256").write_text(f"{'ab' * 32}  model.joblib\n")
    write_fake_model(tmp_path, "fine")
    with make_client(tmp_path) as client:
        texts = [
            client.get("/models").text,
            client.get("/ready").text,
            client.post("/v2/repository/index").text,
            client.post("/models/m/predict", json=ROW).text,
        ]
    for text in texts:
        assert "refusing to load m/1/model.joblib" in text, text
        assert str(tmp_path) not in text
        assert "ab" * 32 not in text
