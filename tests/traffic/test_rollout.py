"""Rollout, rollback, version policy, draining and the admin API's protection (in process)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from modelport.traffic.state import STATE_FILE, read_state, request_rollback, request_rollout
from tests.conftest import ClientFactory
from tests.helpers import write_fake_model

KEY = "s3cret-admin"
ADMIN = {"Authorization": f"Bearer {KEY}"}
ROW = {"x0": 1.0, "x1": 2.0}


def add_version(folder: Path, version: int, **own: object) -> None:
    """A version folder whose artifact carries its own fake-runtime parameters."""
    (folder / str(version)).mkdir()
    (folder / str(version) / "model.fake").write_text(yaml.safe_dump(own or {"v": version}))


def served(client: TestClient, path: str = "/predict", body: object = ROW) -> str:
    answer = client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-model-version"]


def versions(client: TestClient) -> dict[int, dict[str, object]]:
    model = client.get("/models").json()["models"][0]
    return {v["version"]: v for v in model["versions"]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/models/m"),
        ("POST", "/admin/models/m/rollout/1"),
        ("POST", "/admin/models/m/rollback"),
        ("PUT", "/admin/models/m/traffic"),
        ("POST", "/admin/models/m/versions/1/unload"),
    ],
)
def test_admin_api_is_off_without_a_key(
    tmp_path: Path, make_client: ClientFactory, method: str, path: str
) -> None:
    write_fake_model(tmp_path, "m")
    with make_client(tmp_path) as client:
        answer = client.request(method, path, headers=ADMIN)
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"
    assert "admin API disabled" in answer.json()["error"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"X-Admin-Key": "wrong"}, 401),
        ({"Authorization": f"Bearer {KEY}"}, 200),
        ({"X-Admin-Key": KEY}, 200),
    ],
)
def test_admin_api_needs_the_key(
    tmp_path: Path, make_client: ClientFactory, headers: dict[str, str], status: int
) -> None:
    write_fake_model(tmp_path, "m")
    with make_client(tmp_path, admin_key=KEY) as client:
        answer = client.get("/admin/models/m", headers=headers)
    assert answer.status_code == status
    if status == 401:
        assert answer.json()["code"] == "unauthorized"


def test_version_policy_latest_serves_only_the_newest(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2, 3), version_policy={"latest": 2})
    with make_client(tmp_path) as client:
        assert sorted(versions(client)) == [2, 3]
        assert client.post("/models/m/versions/1/predict", json=ROW).status_code == 404
        assert served(client) == "3"


def test_version_policy_specific(tmp_path: Path, make_client: ClientFactory) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2, 3), version_policy={"specific": [1, 2]})
    with make_client(tmp_path) as client:
        assert sorted(versions(client)) == [1, 2]
        assert served(client) == "2"


def test_rollout_of_a_new_version_then_rollback(tmp_path: Path, make_client: ClientFactory) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,))
    with make_client(tmp_path, admin_key=KEY) as client:
        assert served(client) == "1"
        add_version(folder, 2)
        answer = client.post("/admin/models/m/rollout/2", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"model": "m", "version": 2, "previous": 1}
        assert served(client) == "2"
        assert served(client, "/v1/models/m:predict", {"instances": [ROW]}) == "2"
        assert versions(client)[2]["state"] == "ready"
        assert client.post("/admin/models/m/rollback", headers=ADMIN).status_code == 200
        assert served(client) == "1"
        assert read_state(folder) is not None


def test_a_version_that_fails_its_warm_up_is_not_switched_to(
    tmp_path: Path, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,))
    add_version(folder, 2, predict_error="broken weights")
    add_version(folder, 3, load_error="corrupt file")
    with make_client(tmp_path, admin_key=KEY) as client:
        client.post("/admin/models/m/rollout/1", headers=ADMIN)  # pin v1 as serving
        with caplog.at_level(logging.ERROR, logger="modelport.traffic.rollout"):
            answer = client.post("/admin/models/m/rollout/2", headers=ADMIN)
        assert answer.status_code == 409
        assert answer.json()["code"] == "conflict"
        assert "v1 keeps serving" in answer.json()["error"]
        assert "warm-up prediction failed: broken weights" in answer.json()["error"]
        assert served(client) == "1"
        listed = versions(client)
        assert listed[2]["state"] == "failed"
        assert "broken weights" in str(listed[2]["error"])
        assert "rollout of m v2 failed" in caplog.text
        assert client.post("/admin/models/m/rollout/3", headers=ADMIN).status_code == 409
        assert "corrupt file" in str(versions(client)[3]["error"])
        assert client.post("/admin/models/m/rollout/9", headers=ADMIN).status_code == 404
        assert served(client) == "1"


def test_unloading_waits_for_requests_in_flight(tmp_path: Path, make_client: ClientFactory) -> None:
    flag = tmp_path / "started"
    folder = write_fake_model(tmp_path, "m", versions=(2,))
    add_version(folder, 1, delay_s=0.5, predict_flag=str(flag))
    with make_client(tmp_path, admin_key=KEY) as client:
        results: dict[str, object] = {}

        def slow() -> None:
            answer = client.post("/models/m/versions/1/predict", json=ROW)
            results["status"], results["done"] = answer.status_code, time.monotonic()

        worker = threading.Thread(target=slow)
        worker.start()
        deadline = time.monotonic() + 10
        while not flag.exists():
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.005)
        answer = client.post("/admin/models/m/versions/1/unload", headers=ADMIN)
        unloaded_at = time.monotonic()
        worker.join(10)
        assert answer.status_code == 200
        assert answer.json()["drained"] is True
        assert results["status"] == 200
        assert isinstance(results["done"], float)
        assert results["done"] <= unloaded_at
        assert 1 not in versions(client)
        assert client.post("/models/m/versions/1/predict", json=ROW).status_code == 404
        default = client.post("/admin/models/m/versions/2/unload", headers=ADMIN)
        assert default.status_code == 409


def test_another_worker_and_a_restart_apply_the_rollout(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1, 2), default_version=1)
    with make_client(tmp_path, admin_key=KEY) as first, make_client(tmp_path) as second:
        assert served(second) == "1"
        assert first.post("/admin/models/m/rollout/2", headers=ADMIN).status_code == 200
        deadline = time.monotonic() + 10
        while served(second) != "2":  # the second worker polls the state file every second
            assert time.monotonic() < deadline, "the other worker never applied the rollout"
            time.sleep(0.05)
    assert (folder / STATE_FILE).is_file()
    with make_client(tmp_path) as restarted:
        assert served(restarted) == "2"


def test_rollout_and_rollback_from_the_command_line(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,), default_version=1)
    add_version(folder, 2)
    state = request_rollout(tmp_path, "m", 2)
    assert (state.active, state.previous) == (2, 1)
    add_version(folder, 3, predict_error="nope")
    with pytest.raises(Exception, match="nope"):
        request_rollout(tmp_path, "m", 3)
    with make_client(tmp_path) as client:
        assert served(client) == "2"
    assert request_rollback(tmp_path, "m").active == 1
    with make_client(tmp_path) as client:
        assert served(client) == "1"


def test_the_rollout_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli.test_cli import run

    folder = write_fake_model(tmp_path, "m", versions=(1,), default_version=1)
    add_version(folder, 2)
    add_version(folder, 3, load_error="bad file")
    code, _, err = run(capsys, "rollout", "m", "2", str(tmp_path))
    assert code == 0, err
    assert "m v2 rolled out (rollback target: v1)" in err
    code, _, err = run(capsys, "rollout", "m", "3", str(tmp_path))
    assert code == 2
    assert "bad file" in err
    code, _, err = run(capsys, "rollback", "m", str(tmp_path))
    assert code == 0, err
    assert "rolled back to v1" in err
    state = read_state(folder)
    assert state is not None
    assert (state.active, state.previous) == (1, 2)
    code, _, err = run(capsys, "rollout", "nope", "1", str(tmp_path))
    assert code == 2
    assert "nope" in err


def test_v2_repository_load_and_unload_need_the_admin_key_once_set(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    write_fake_model(tmp_path, "m")
    with make_client(tmp_path, admin_key=KEY) as client:
        for action in ("load", "unload"):
            path = f"/v2/repository/models/m/{action}"
            assert client.post(path).status_code == 401
            assert client.post(path, headers={"X-Admin-Key": "no"}).status_code == 401
        assert client.post("/v2/repository/index").status_code == 200
        assert client.post("/v2/repository/models/m/load", headers=ADMIN).status_code == 200
        assert client.post("/v2/repository/models/m/unload", headers=ADMIN).status_code == 200
