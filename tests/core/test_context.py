"""Request ids: every answer on every protocol carries one; a sane caller id is kept."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from modelport.core import context
from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW

CALLS = [
    ("POST", "/predict", IRIS_ROW, 200),
    ("POST", "/predict", {"sepal_length": "x"}, 422),
    ("POST", "/v1/models/iris:predict", {"instances": [list(IRIS_ROW.values())]}, 200),
    ("GET", "/v2/models/iris", None, 200),
    ("GET", "/health", None, 200),
    ("GET", "/models/nope/predict", None, 405),
    ("POST", "/models/nope/predict", IRIS_ROW, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), CALLS)
def test_every_answer_has_a_fresh_request_id(
    client: TestClient, method: str, path: str, body: object, status: int
) -> None:
    first = client.request(method, path, json=body)
    second = client.request(method, path, json=body)
    assert first.status_code == status
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(i) == 32 for i in ids)
    assert ids[0] != ids[1]


def test_a_sane_caller_id_is_echoed(client: TestClient) -> None:
    response = client.post("/predict", json=IRIS_ROW, headers={"X-Request-Id": "order-42/a"})
    assert response.headers.get_list("x-request-id") == ["order-42/a"]


@pytest.mark.parametrize("given", [b"has space", b"x" * 129, "é".encode()])
def test_an_unusable_caller_id_is_replaced(client: TestClient, given: bytes) -> None:
    response = client.get("/health", headers={b"X-Request-Id": given})
    assert response.headers["x-request-id"].encode() != given
    assert len(response.headers["x-request-id"]) == 32


def test_an_oversize_body_still_gets_an_id(make_client: ClientFactory, repo: object) -> None:
    with make_client(repo, max_body_bytes=1024) as client:
        response = client.post("/predict", content=b"{" + b" " * 2000 + b"}")
    assert response.status_code == 413
    assert len(response.headers["x-request-id"]) == 32


def test_no_request_outside_a_request() -> None:
    assert context.current() is None


@pytest.mark.parametrize(
    ("path", "body", "version"),
    [
        ("/predict", IRIS_ROW, 1),
        (
            "/v2/models/iris/infer",
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 4],
                        "datatype": "FP64",
                        "data": list(IRIS_ROW.values()),
                    }
                ]
            },
            1,
        ),
    ],
)
def test_the_serving_version_is_recorded(
    client: TestClient, path: str, body: object, version: int
) -> None:
    seen: list[context.RequestInfo | None] = []
    plane = client.app.state.dataplane  # type: ignore[attr-defined]
    infer = plane.infer

    async def spy(model: object, rows: object) -> object:
        result = await infer(model, rows)
        seen.append(context.current())
        return result

    plane.infer = spy
    try:
        response = client.post(path, json=body)
    finally:
        del plane.infer
    assert response.status_code == 200
    info = seen[0]
    assert info is not None
    assert (info.model, info.version) == ("iris", version)
    assert info.request_id == response.headers["x-request-id"]


def test_use_sets_and_restores() -> None:
    info = context.RequestInfo("shadow-1")
    with context.use(info):
        assert context.current() is info
    assert context.current() is None


def test_release_gives_back_every_held_version() -> None:
    class Held:
        inflight = 1

    info = context.RequestInfo("r-1")
    first, second = Held(), Held()
    info.held.extend([first, second])  # type: ignore[list-item]
    info.release()
    assert (first.inflight, second.inflight, info.held) == (0, 0, [])


def test_a_forked_process_draws_its_own_id_prefix() -> None:
    """gunicorn forks its workers after the app is loaded: their ids must not collide."""
    parent = context.new_request_id()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next id, then out at once
        try:
            os.write(write, context.new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        forked = pipe.read().decode()
    os.waitpid(child, 0)
    assert len(forked) == len(parent) == 32
    assert forked[:16] != parent[:16]  # a prefix of its own
    assert context.new_request_id()[:16] == parent[:16]  # the parent keeps its own
