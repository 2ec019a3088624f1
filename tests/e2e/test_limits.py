"""HTTP limits of the server we ship, probed with raw sockets on uvicorn and under gunicorn.

Header size and count (431), the header and body read timeouts (408, or a plain close when
nothing was asked), the keep-alive timeout, the connection limit (503) and a chunked body past
``MODELPORT_MAX_BODY_BYTES`` (413). The timeouts are set tiny by environment here, and each test
polls for the server's close with a deadline.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, running_server, write_fake_model

pytestmark = pytest.mark.e2e

TIMEOUT_S = 0.5  # header, body and keep-alive timeouts of the servers under test
CLOSE_WITHIN_S = 5.0  # each limit acts at most half a timeout late; the rest is a busy machine
LIMITS = {
    "MODELPORT_HEADER_TIMEOUT": str(TIMEOUT_S),
    "MODELPORT_BODY_TIMEOUT": str(TIMEOUT_S),
    "MODELPORT_KEEPALIVE_TIMEOUT": str(TIMEOUT_S),
    "MODELPORT_MAX_HEADER_BYTES": "8192",
    "MODELPORT_MAX_HEADERS": "50",
    "MODELPORT_MAX_BODY_BYTES": "2048",
    "MODELPORT_OUTCOMES": "false",
}
BODY = b'{"x0": 1.0, "x1": 2.0}'


@pytest.fixture(scope="module", params=["1", "2"], ids=["uvicorn", "gunicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"limits-{request.param}")
    write_fake_model(tmp / "repo", "fake")
    args = [str(tmp / "repo"), "--workers", request.param]
    with running_server(args, tmp / "log", LIMITS) as running:
        yield running


@contextlib.contextmanager
def _connection(server: Server) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=CLOSE_WITHIN_S)
    try:
        yield sock
    finally:
        sock.close()


def _until_closed(sock: socket.socket, trickle: bytes = b"") -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took.

    With ``trickle``, send it every 0.1 s meanwhile, as a slow client would."""
    started = time.monotonic()
    deadline = started + CLOSE_WITHIN_S
    received = b""
    sock.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if trickle:
                with contextlib.suppress(OSError):
                    sock.sendall(trickle)
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    else:
        pytest.fail(f"the server kept the connection open for {CLOSE_WITHIN_S} s")
    return received, time.monotonic() - started


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _head(*lines: str) -> bytes:
    return ("\r\n".join(["POST /predict HTTP/1.1", "Host: test", *lines]) + "\r\n\r\n").encode()


def test_a_head_past_the_byte_limit_gets_431_and_a_close(server: Server) -> None:
    with _connection(server) as sock:
        sock.sendall(_head(f"X-Big: {'a' * 10_000}", "Content-Length: 0"))
        answer, _ = _until_closed(sock)
    assert _status(answer) == 431
    assert b"connection: close" in answer
    assert b'"code":"headers_too_large"' in answer


def test_a_64_mb_header_line_is_cut_off_before_it_is_read(server: Server) -> None:
    line = b"X-Big: " + b"a" * (1 << 20)
    with _connection(server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\n")
        sent = 0
        with contextlib.suppress(ConnectionResetError, BrokenPipeError, TimeoutError):
            while sent < 64 << 20:
                sock.sendall(line)
                sent += len(line)
    assert sent < 64 << 20  # the server closed long before the line ended


def test_too_many_headers_get_431(server: Server) -> None:
    with _connection(server) as sock:
        sock.sendall(_head(*(f"X-H{i}: 1" for i in range(60)), f"Content-Length: {len(BODY)}"))
        answer, _ = _until_closed(sock)
    assert _status(answer) == 431
    assert b"more than 50 request headers" in answer


def test_headers_within_the_limits_are_served(server: Server) -> None:
    with _connection(server) as sock:
        headers = (f"X-H{i}: {'b' * 100}" for i in range(40))
        sock.sendall(_head(*headers, f"Content-Length: {len(BODY)}", "Connection: close") + BODY)
        answer, _ = _until_closed(sock)
    assert _status(answer) == 200


def test_a_slow_header_trickle_is_cut_off_with_408(server: Server) -> None:
    with _connection(server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\n")
        answer, took = _until_closed(sock, trickle=b"X-Slow: 1\r\n")
    assert _status(answer) == 408
    assert b'"code":"request_timeout"' in answer
    assert TIMEOUT_S * 0.9 <= took < CLOSE_WITHIN_S


def test_a_connection_that_sends_nothing_is_closed_silently(server: Server) -> None:
    with _connection(server) as sock:
        answer, took = _until_closed(sock)
    assert answer == b""
    assert took < CLOSE_WITHIN_S


def test_a_slow_body_gets_408(server: Server) -> None:
    with _connection(server) as sock:
        sock.sendall(_head("Content-Length: 100") + b'{"x0": ')
        answer, _ = _until_closed(sock, trickle=b" ")
    assert _status(answer) == 408
    assert b"request body took over" in answer


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with _connection(server) as sock:
        sock.sendall(_head(f"Content-Length: {len(BODY)}") + BODY)
        answer, took = _until_closed(sock, trickle=b"\r\n")  # CRLFs do not begin a request
    assert _status(answer) == 200
    assert took < CLOSE_WITHIN_S


def test_a_chunked_body_past_the_limit_gets_413(server: Server) -> None:
    with _connection(server) as sock:
        sock.sendall(_head("Transfer-Encoding: chunked"))
        chunk = b"x" * 1000
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for _ in range(3):  # 3,000 bytes against a limit of 2,048
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer, _ = _until_closed(sock)
    assert _status(answer) == 413
    assert b"connection: close" in answer


@pytest.mark.parametrize("workers", ["1", "2"], ids=["uvicorn", "gunicorn"])
def test_connections_past_the_limit_get_503(tmp_path: Path, workers: str) -> None:
    write_fake_model(tmp_path / "repo", "fake")
    env = {"MODELPORT_MAX_CONNECTIONS": "4", "MODELPORT_OUTCOMES": "false"}
    args = [str(tmp_path / "repo"), "--workers", workers]
    with running_server(args, tmp_path / "log", env) as server:
        # With 2 workers each holds 4: 9 connections are more than both can hold.
        held = [
            socket.create_connection(("127.0.0.1", server.port), timeout=CLOSE_WITHIN_S)
            for _ in range(9 if workers == "2" else 4)
        ]
        try:
            statuses = []
            for sock in held:
                sock.sendall(_head(f"Content-Length: {len(BODY)}") + BODY)
                statuses.append(_status(sock.recv(65536)))
            with _connection(server) as extra:
                extra.sendall(_head(f"Content-Length: {len(BODY)}") + BODY)
                answer, _ = _until_closed(extra)
        finally:
            for sock in held:
                sock.close()
    if workers == "1":
        assert statuses == [200] * 4
        assert _status(answer) == 503
        assert b"retry-after: 1" in answer
        assert b'"code":"overloaded"' in answer
    else:  # which worker accepts which connection is the kernel's choice
        everything = [*statuses, _status(answer)]
        assert everything.count(503) >= 2
        assert set(everything) == {200, 503}
