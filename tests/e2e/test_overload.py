"""Overload on a real server: while a model's queue stands, a prediction gets its 503 with
``Retry-After`` before its body is read (the cheap refusal), and every answer is 200 or 503."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.test_limits import _connection, _head, _status, _until_closed
from tests.helpers import Server, running_server, write_fake_model

pytestmark = pytest.mark.e2e


def test_an_overloaded_model_refuses_before_reading_the_body(tmp_path: Path) -> None:
    card = {"parameters": {"delay_s": 0.2}, "batching": {"max_batch_size": 1, "max_wait_ms": 50}}
    write_fake_model(tmp_path / "repo", "slow", **card)
    env = {"MODELPORT_BODY_TIMEOUT": "1", "MODELPORT_OUTCOMES": "false"}
    with running_server([str(tmp_path / "repo")], tmp_path / "log", env) as server:
        statuses: Counter[int] = Counter()
        stop = threading.Event()

        def load() -> None:  # more than the model serves: its queue stands
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    reply = client.post(f"{server.url}/predict", json={"x0": 1, "x1": 1})
                    statuses[reply.status_code] += 1

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 30
            answer = b""
            while time.monotonic() < deadline:
                with _connection(server) as sock:  # headers only: the body never comes
                    sock.sendall(_head("Content-Length: 22", "Content-Type: application/json"))
                    answer, _ = _until_closed(sock)
                if _status(answer) == 503:
                    break
                assert _status(answer) == 408  # admitted: it waited for its body in vain
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert _status(answer) == 503
    assert 1 <= _retry_after(answer) <= 4  # spread over seconds (max_retry_after_s)
    assert b"serving all it can" in answer
    assert set(statuses) <= {200, 503}
    assert statuses[200] > 0
    assert "waited too long" not in server.output()  # refusals are not logged as errors


KEY = "shed-test-key"
BODY = b'{"x0": 1.0, "x1": 2.0}'


@pytest.fixture(scope="module", params=["1", "2"], ids=["uvicorn", "gunicorn"])
def overloaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server whose one model (shipped batching defaults: the controlled delay on) gets more
    keyed predictions than it serves, from six threads, for as long as the module's tests run."""
    tmp = tmp_path_factory.mktemp("shed")
    write_fake_model(
        tmp / "repo", "slow", parameters={"delay_s": 0.2}, batching={"max_batch_size": 1}
    )
    env = {
        "MODELPORT_INFERENCE_KEY": KEY,
        "MODELPORT_OUTCOMES": "false",
        "MODELPORT_BODY_TIMEOUT": "1",
        "MODELPORT_ACCESS_LOG": "true",
    }
    args = [str(tmp / "repo"), "--workers", request.param]
    with running_server(args, tmp / "log", env) as server:
        stop = threading.Event()

        def load() -> None:
            headers = {"Authorization": f"Bearer {KEY}"}
            with httpx.Client(timeout=30, headers=headers) as client:
                while not stop.is_set():
                    client.post(f"{server.url}/predict", content=BODY)

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            yield server
        finally:
            stop.set()
            for thread in threads:
                thread.join()


def _request(*headers: str, body: bytes = BODY) -> bytes:
    lines = ["POST /predict HTTP/1.1", "Host: test", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _retry_after(answer: bytes) -> int:
    found = re.search(rb"\r\nretry-after: (\d+)\r\n", answer.lower())
    assert found, answer
    return int(found.group(1))


def _answer(sock: socket.socket) -> bytes:
    """One whole answer (head and Content-Length body) from a kept-open connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection inside an answer"
        body += chunk
    return head + b"\r\n\r\n" + body


def _until_shed(server: Server, request: bytes, answer: Callable[[socket.socket], bytes]) -> bytes:
    """Send ``request`` on fresh connections until the protocol sheds one (or 30 s pass)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with _connection(server) as sock:
            sock.sendall(request)
            reply = answer(sock).removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")  # admitted
        if _status(reply) == 503:
            return reply
        assert _status(reply) in (200, 408), reply  # admitted: served, or its body never came
    pytest.fail("the model never refused a request in 30 s")


def test_a_shed_prediction_keeps_its_connection_open(overloaded: Server) -> None:
    """On fresh connections until one is shed: with two workers, one connection may stay with
    the less loaded worker for as long as the test runs."""
    keyed = f"Authorization: Bearer {KEY}"
    request = _request(keyed, "X-Request-Id: order-3003", f"Content-Length: {len(BODY)}")
    after: list[bytes] = []

    def and_the_next(sock: socket.socket) -> bytes:
        first = _answer(sock)
        if _status(first) == 503:
            sock.sendall(request)  # the same connection serves the next request
            after.append(_answer(sock))
        return first

    first = _until_shed(overloaded, request, and_the_next)
    assert 1 <= _retry_after(first) <= 4
    assert b"connection: close" not in first.lower()
    assert b'"code":"overloaded"' in first
    assert b"x-request-id: order-3003" in first.lower()
    assert len(after) == 1
    assert _status(after[0]) in (200, 503)  # answered on the connection that stayed open


@pytest.mark.parametrize(
    "announced",
    [
        ["Content-Length: 100000"],
        ["Transfer-Encoding: chunked"],
        [f"Content-Length: {len(BODY)}", "Expect: 100-continue"],
    ],
    ids=["large", "chunked", "expect-continue"],
)
def test_a_shed_answer_comes_before_the_body(overloaded: Server, announced: list[str]) -> None:
    head = _request(f"Authorization: Bearer {KEY}", *announced, body=b"")
    reply = _until_shed(overloaded, head, lambda sock: _until_closed(sock)[0])
    assert b"connection: close" in reply.lower()  # the body is never read: the connection ends


def test_an_overloaded_model_still_asks_for_the_key(overloaded: Server) -> None:
    _until_shed(
        overloaded,
        _request(f"Authorization: Bearer {KEY}", f"Content-Length: {len(BODY)}"),
        _answer,
    )
    with _connection(overloaded) as sock:  # while it sheds, a caller without a key gets a 401
        sock.sendall(_request(f"Content-Length: {len(BODY)}"))
        assert _status(_answer(sock)) == 401


def test_shed_answers_are_counted_and_logged(overloaded: Server) -> None:
    _until_shed(
        overloaded,
        _request(f"Authorization: Bearer {KEY}", f"Content-Length: {len(BODY)}"),
        _answer,
    )
    metrics = httpx.get(f"{overloaded.url}/metrics").text
    shed = [
        line
        for line in metrics.splitlines()
        if line.startswith("modelport_requests_total{")
        and 'code="503"' in line
        and 'endpoint="/predict"' in line
        and 'model=""' in line  # refused before it reached a version
    ]
    assert shed, metrics
    assert float(shed[0].rsplit(" ", 1)[1]) >= 1
    assert '"POST /predict" 503' in overloaded.output()
