"""Auth that fails closed, and what is recorded, on real servers on loopback (issue 13).

Two servers: one as shipped (no key at all) and one with two inference keys and an admin key.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.helpers import running_server, write_fake_model

pytestmark = pytest.mark.e2e

CLASSES = ["no", "yes"]
ALICE, BOB, ADMIN = "alice-key", "bob-key", "admin-key"
MAX_BODY = 2048
ADMIN_ROUTES = [
    ("POST", "/v2/repository/models/iris/unload"),
    ("POST", "/v2/repository/models/iris/load"),
    ("GET", "/admin/models/iris"),
    ("POST", "/admin/models/iris/rollout/2"),
    ("POST", "/admin/models/iris/rollback"),
    ("POST", "/admin/models/iris/versions/1/load"),
    ("POST", "/admin/models/iris/versions/1/unload"),
    ("PUT", "/admin/models/iris/traffic"),
    ("POST", "/admin/models/iris/canary/advance"),
    ("POST", "/admin/models/iris/canary/abort"),
]


@dataclass
class Live:
    client: httpx.Client
    url: str
    db: Path  # its outcome store


def _server(folder: Path, env: dict[str, str]) -> Iterator[Live]:
    """A real server serving ``iris`` v1 and v2 (a fake classifier)."""
    repo = folder / "repo"
    write_fake_model(
        repo, "iris", versions=(1, 2), parameters={"classes": CLASSES, "n_features": 1}
    )
    env = {"MODELPORT_ADMIN_KEY": "", "MODELPORT_INFERENCE_KEY": "", **env}
    with (
        running_server([str(repo)], folder / "server.log", env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield Live(client, server.url, repo / ".modelport" / "outcomes.db")


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """As shipped: no admin key, no inference key (and a small body limit)."""
    env = {"MODELPORT_MAX_BODY_BYTES": str(MAX_BODY)}
    yield from _server(tmp_path_factory.mktemp("open"), env)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    env = {"MODELPORT_INFERENCE_KEY": f"{ALICE}, {BOB}", "MODELPORT_ADMIN_KEY": ADMIN}
    yield from _server(tmp_path_factory.mktemp("keyed"), env)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _predict(
    client: httpx.Client, version: int, request_id: str, key: str | None = None
) -> httpx.Response:
    headers = {"X-Request-Id": request_id, **(_bearer(key) if key else {})}
    path = f"/models/iris/versions/{version}/predict"
    return client.post(path, json={"x0": 1}, headers=headers)


def _feedback(client: httpx.Client, request_id: str, key: str | None = None) -> httpx.Response:
    headers = _bearer(key) if key else {}
    body = {"request_id": request_id, "label": "yes"}
    return client.post("/feedback", json=body, headers=headers)


def test_without_an_admin_key_every_admin_route_is_refused(open_server: Live) -> None:
    client = open_server.client
    for method, path in ADMIN_ROUTES:
        for headers in ({}, _bearer("guess"), {"X-Admin-Key": "guess"}):
            refused = client.request(method, path, headers=headers)
            assert refused.status_code == 403, (method, path)
            assert "MODELPORT_ADMIN_KEY" in refused.json()["error"]
    index = client.post("/v2/repository/index").json()
    assert [entry["state"] for entry in index] == ["READY", "READY"]  # nothing was unloaded
    assert client.get("/v2/models/iris/ready").status_code == 200
    assert _predict(client, 1, "after-admin-probe").status_code == 200


def test_with_an_admin_key_only_that_key_opens_the_admin_routes(keyed_server: Live) -> None:
    client = keyed_server.client
    for method, path in ADMIN_ROUTES:
        for headers in ({}, _bearer(ALICE), {"X-Api-Key": BOB}, {"X-Admin-Key": "guess"}):
            refused = client.request(method, path, headers=headers)
            assert refused.status_code == 401, (method, path, headers)
            assert refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/admin/models/iris", headers=_bearer(ADMIN)).status_code == 200
    assert client.get("/v2/models/iris/ready").status_code == 200


def test_feedback_and_experiments_need_a_key_once_keys_are_set(keyed_server: Live) -> None:
    client = keyed_server.client
    assert _predict(client, 1, "keyed-1", ALICE).status_code == 200
    for headers in ({}, _bearer("guess"), {"X-Admin-Key": "guess"}):
        answer = client.post("/feedback", json={"request_id": "keyed-1", "label": "yes"},
                            headers=headers)  # fmt: skip
        assert answer.status_code == 401, headers
        assert answer.json()["code"] == "unauthorized"
        assert client.get("/experiments/iris", headers=headers).status_code == 401
    assert _feedback(client, "keyed-1", ADMIN).status_code == 401  # feedback is the caller's own
    assert _feedback(client, "keyed-1", ALICE).status_code == 200
    for headers in (_bearer(ALICE), {"X-Api-Key": BOB}, _bearer(ADMIN), {"X-Admin-Key": ADMIN}):
        report = client.get("/experiments/iris", headers=headers)
        assert report.status_code == 200, headers
        assert report.json()["variants"][0]["feedback"] >= 1


def test_request_ids_are_scoped_so_nobody_can_squat(keyed_server: Live) -> None:
    client = keyed_server.client
    # an anonymous squatter is refused, and a refused request records nothing
    assert _predict(client, 2, "order-3003").status_code == 401
    assert _predict(client, 1, "order-3003", ALICE).status_code == 200
    answer = _feedback(client, "order-3003", ALICE)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["version"], answer.json()["variant"]) == (1, "v1")
    # a keyed squatter predicts first with the id another key will use: each keeps its own
    assert _predict(client, 2, "order-4004", BOB).status_code == 200
    assert _predict(client, 1, "order-4004", ALICE).status_code == 200
    alices, bobs = _feedback(client, "order-4004", ALICE), _feedback(client, "order-4004", BOB)
    assert (alices.status_code, alices.json()["version"], alices.json()["recorded"]) == (
        200, 1, "new",
    )  # fmt: skip
    assert (bobs.status_code, bobs.json()["version"], bobs.json()["recorded"]) == (200, 2, "new")
    # nobody reaches another key's ids: a miss is 404, as for an id never used
    assert _predict(client, 2, "bobs-only", BOB).status_code == 200
    assert _feedback(client, "bobs-only", ALICE).status_code == 404
    assert _feedback(client, "bobs-only", BOB).status_code == 200


def _pipelined(url: str, requests: list[bytes]) -> list[int]:
    """Send ``requests`` down one keep-alive connection at once; the answers' statuses."""
    host, port = url.removeprefix("http://").split(":")
    statuses: list[int] = []
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"".join(requests))
        reader = sock.makefile("rb")
        for _ in requests:
            statuses.append(int(reader.readline().split()[1]))
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            reader.read(length)
    return statuses


def _raw(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{headers}"
    return head.encode() + b"\r\n" + body


def _stored(db: Path) -> tuple[int, set[str]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT variant FROM mp_requests WHERE model = 'iris'").fetchall()
    return len(rows), {row[0] for row in rows}


def test_only_requests_that_reached_a_version_are_recorded(open_server: Live) -> None:
    client = open_server.client
    url, db = open_server.url, open_server.db
    assert _predict(client, 1, "real-1").status_code == 200
    before: dict[str, Any] = client.get("/experiments/iris").json()  # flushes the writer
    stored = _stored(db)
    row = b'{"x0": 1}'
    phantoms = [_raw("POST", f"/models/iris/versions/{n}/predict", row) for n in range(3, 5003)]
    assert set(_pipelined(url, phantoms)) == {404}
    others = [
        _raw("POST", "/models/nope/predict", row),  # 404: no such model
        _raw("POST", "/models/nope/versions/1/predict", row),
        _raw("GET", "/models/iris/versions/1/predict"),  # 405
        _raw("POST", "/v2/models/iris/versions/9/infer", b"{}"),
        _raw("POST", "/v1/models/nope:predict", b"{}"),
        _raw("POST", "/models/iris/versions/1/predict", b"x" * (MAX_BODY + 1)),  # 413
    ]
    assert _pipelined(url, others) == [404, 404, 405, 404, 404, 413]
    after = client.get("/experiments/iris").json()
    assert after == before
    assert _stored(db) == stored
    assert stored[1] == {"v1"}
