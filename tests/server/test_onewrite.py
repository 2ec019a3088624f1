"""An answer's head and body leave in one write, and nothing that must go out at once waits.

The protocol is modelport's own (uvicorn's httptools protocol with modelport's limits), fed raw
request bytes on a real event loop; the transport records each write, which is what this
behaviour is about (on a socket, two writes and one can look alike to the reader).
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from modelport.server.onewrite import JOIN_BYTES
from modelport.server.protocol import Limits, protocol_class

pytestmark = pytest.mark.anyio
App = Callable[[Any, Any, Any], Awaitable[None]]
BODY = b'{"ok":true}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recording(asyncio.Transport):
    """A connection's transport that keeps what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(status: int, body: bytes, send: Any, length: bool = True) -> None:
    headers = [(b"content-type", b"application/json")]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def plain(scope: Any, receive: Any, send: Any) -> None:
    await answer(200, BODY, send)


def connect(app: App) -> tuple[Any, Recording]:
    config = Config(app=app, log_level="warning", lifespan="off", proxy_headers=False)
    config.load()
    protocol_type = protocol_class(Limits())
    protocol = protocol_type(config=config, server_state=ServerState(), app_state={})
    transport = Recording()
    protocol.connection_made(transport)
    return protocol, transport


async def settled(protocol: Any) -> None:
    """Every ASGI task of the connection has finished."""
    while protocol.tasks:
        await asyncio.gather(*protocol.tasks)


def request(method: str = "POST", body: bytes = b"{}", extra: bytes = b"") -> bytes:
    head = f"{method} /x HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n".encode()
    return head + extra + b"\r\n" + body


async def writes_of(app: App, data: bytes) -> list[bytes]:
    """What the connection wrote once ``data`` was answered."""
    protocol, transport = connect(app)
    protocol.data_received(data)
    await settled(protocol)
    return transport.writes


def is_head(written: bytes, status_line: bytes) -> bool:
    """Whether ``written`` is a response head alone, with that status line."""
    return written.startswith(status_line + b"\r\n") and written.endswith(b"\r\n\r\n")


async def test_an_answer_with_a_length_is_one_write() -> None:
    writes = await writes_of(plain, request() + request())  # two on one connection, pipelined
    assert len(writes) == 2
    for written in writes:
        head, _, body = written.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert body == BODY


async def test_a_large_body_is_not_copied_behind_its_head() -> None:
    large = b"x" * (JOIN_BYTES + 1)

    async def big(scope: Any, receive: Any, send: Any) -> None:
        await answer(200, large, send)

    writes = await writes_of(big, request())
    assert len(writes) == 2
    assert is_head(writes[0], b"HTTP/1.1 200 OK")
    assert writes[1] == large


async def test_an_empty_body_still_sends_its_head() -> None:
    async def empty(scope: Any, receive: Any, send: Any) -> None:
        await answer(204, b"", send)

    writes = await writes_of(empty, request())
    assert len(writes) == 1
    assert is_head(writes[0], b"HTTP/1.1 204 No Content")


async def test_the_head_of_a_head_request_goes_out_alone() -> None:
    writes = await writes_of(plain, request("HEAD", b""))
    assert len(writes) == 1
    assert is_head(writes[0], b"HTTP/1.1 200 OK")  # and no body


async def test_a_chunked_head_is_not_held_back_until_its_body() -> None:
    go = asyncio.Event()

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await go.wait()
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    protocol, transport = connect(streaming)
    protocol.data_received(request())
    while not transport.writes:
        await asyncio.sleep(0)  # the app runs until it waits for go
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in transport.writes[0]
    go.set()
    await settled(protocol)
    assert transport.writes[1:] == [b"4\r\nlate\r\n0\r\n\r\n"]


async def test_100_continue_goes_out_before_the_body_is_read() -> None:
    received = asyncio.Event()

    async def reading(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        received.set()
        await answer(200, message["body"], send)

    protocol, transport = connect(reading)
    whole = request(body=b"hello", extra=b"expect: 100-continue\r\n")
    protocol.data_received(whole[:-5])  # the head alone: the client waits for 100 Continue
    while not transport.writes:
        await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert not received.is_set()
    protocol.data_received(b"hello")
    await settled(protocol)
    assert len(transport.writes) == 2
    assert transport.writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[1].endswith(b"\r\n\r\nhello")


async def test_a_failure_between_head_and_body_sends_the_head_and_closes() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise RuntimeError("the body never comes")

    protocol, transport = connect(failing)
    protocol.data_received(request())
    await settled(protocol)
    assert transport.closed
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")


async def test_an_answered_cycle_is_freed_without_the_garbage_collector() -> None:
    protocol, transport = connect(plain)
    protocol.data_received(request())
    await settled(protocol)
    cycle = weakref.ref(protocol.cycle)
    gc.disable()
    try:
        protocol.data_received(request())  # the next request replaces the answered cycle
        await settled(protocol)
        assert cycle() is None  # freed by its reference count: no cycle with its transport
    finally:
        gc.enable()
    assert len(transport.writes) == 2
