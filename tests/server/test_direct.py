"""The direct lane: a prediction goes to the pipeline without the app's stack, and the client
sees byte for byte what uvicorn's own path would have written.

Each case runs modelport's protocol twice on a real event loop, with a transport that records
each write: once with a lane in the lifespan state (as the pipeline offers it), once without.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from modelport.server.direct import LANE_HOOK
from modelport.server.onewrite import JOIN_BYTES
from modelport.server.protocol import Limits, protocol_class
from tests.server.test_onewrite import BODY, App, Recording, answer, plain, request, settled

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Lane:
    """A lane for ``POST /x``, running ``app``; counts what it took. Its ``owner`` (the app whose
    stack it heads) is the app uvicorn is given, unless a test says otherwise."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.owner: object = None
        self.taken = 0

    def takes(self, scope: Any) -> bool:
        taken = scope["method"] == "POST" and scope["path"] == "/x"
        self.taken += taken
        return taken

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


async def stack(scope: Any, receive: Any, send: Any) -> None:
    """The app uvicorn was given: what the lane goes around."""
    await answer(200, b"from the stack", send)


def connect(
    app: App, lane: Lane | None, proxy_headers: bool = False, access_log: bool = False
) -> tuple[Any, Recording]:
    config = Config(
        app=app,
        log_level="critical",
        lifespan="off",
        proxy_headers=proxy_headers,
        access_log=access_log,
    )
    config.load()
    if lane is not None and lane.owner is None:
        lane.owner = app
    state: dict[str, Any] = {} if lane is None else {LANE_HOOK: lane}
    protocol = protocol_class(Limits())(config=config, server_state=ServerState(), app_state=state)
    transport = Recording()
    protocol.connection_made(transport)
    return protocol, transport


async def run(app: App, data: bytes, direct: bool) -> tuple[list[bytes], Recording]:
    lane = Lane(app) if direct else None
    protocol, transport = connect(app if lane is None else stack, lane)
    protocol.data_received(data)
    await settled(protocol)
    assert lane is None or lane.taken
    return transport.writes, transport


async def same_bytes(app: App, data: bytes) -> list[bytes]:
    """The lane's writes, once checked to add up to what uvicorn's own path writes."""
    lane, lane_transport = await run(app, data, direct=True)
    own, own_transport = await run(app, data, direct=False)
    assert b"".join(lane) == b"".join(own)
    assert lane_transport.closed == own_transport.closed
    return lane


async def test_a_prediction_is_one_write_of_what_uvicorn_writes() -> None:
    writes = await same_bytes(plain, request() + request())  # two, pipelined
    assert len(writes) == 2
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(BODY) for w in writes)


async def test_the_apps_stack_is_gone_around_for_a_prediction_only() -> None:
    lane = Lane(plain)
    protocol, transport = connect(stack, lane)
    protocol.data_received(request() + request("GET", b""))
    await settled(protocol)
    assert transport.writes[0].endswith(BODY)
    assert transport.writes[1].endswith(b"from the stack")
    assert lane.taken == 1


async def test_a_large_or_empty_body_goes_out_as_uvicorn_sends_it() -> None:
    large = b"x" * (JOIN_BYTES + 1)

    async def big(scope: Any, receive: Any, send: Any) -> None:
        await answer(200, large, send)

    async def empty(scope: Any, receive: Any, send: Any) -> None:
        await answer(204, b"", send)

    assert len(await same_bytes(big, request())) == 2  # not copied behind its head
    assert len(await same_bytes(empty, request())) == 1


async def test_a_body_that_arrives_in_pieces_is_read_whole() -> None:
    bodies = []

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message["body"], message.get("more_body", False)
        bodies.append(body)
        await answer(200, body, send)

    protocol, transport = connect(stack, Lane(echo))
    whole = request(body=b"0123456789")
    protocol.data_received(whole[:-7])
    await asyncio.sleep(0)
    protocol.data_received(whole[-7:-3])
    await asyncio.sleep(0)
    protocol.data_received(whole[-3:])
    await settled(protocol)
    assert bodies == [b"0123456789"]
    assert transport.writes[-1].endswith(b"\r\n\r\n0123456789")


async def test_a_second_receive_waits_for_the_end_as_uvicorns_does() -> None:
    messages = []

    async def twice(scope: Any, receive: Any, send: Any) -> None:
        messages.append(await receive())
        later = asyncio.ensure_future(receive())
        await asyncio.sleep(0)  # (a yield: the second receive starts waiting before the answer)
        await answer(200, BODY, send)
        messages.append(await later)

    await same_bytes(twice, request(body=b"[1]"))
    assert [m["type"] for m in messages] == ["http.request", "http.disconnect"] * 2
    assert messages[0]["body"] == b"[1]"


async def test_100_continue_goes_out_before_the_body_is_read() -> None:
    async def reading(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        await answer(200, message["body"], send)

    protocol, transport = connect(stack, Lane(reading))
    whole = request(body=b"hello", extra=b"expect: 100-continue\r\n")
    protocol.data_received(whole[:-5])
    while not transport.writes:
        await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(b"hello")
    await settled(protocol)
    assert transport.writes[1].endswith(b"\r\n\r\nhello")


async def test_an_answer_without_a_length_is_chunked_by_uvicorn() -> None:
    async def unsized(scope: Any, receive: Any, send: Any) -> None:
        await answer(200, b"late", send, length=False)

    writes = await same_bytes(unsized, request())
    assert b"transfer-encoding: chunked" in writes[0]


@pytest.mark.parametrize(
    "header",
    [(b"x-bad", b"a\r\nset-cookie: x"), (b"bad name", b"1"), (b"connection", b"close")],
    ids=["value-with-a-newline", "name-with-a-space", "connection-close"],
)
async def test_headers_uvicorn_refuses_or_shapes_are_left_to_it(
    header: tuple[bytes, bytes],
) -> None:
    async def odd(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"2"), header]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    writes = await same_bytes(odd, request())
    assert b"a\r\nset-cookie" not in b"".join(writes)


async def test_a_client_that_closes_gets_connection_close_and_a_close() -> None:
    writes = await same_bytes(plain, request(extra=b"connection: close\r\n"))
    assert b"\r\nconnection: close\r\n" in writes[0]


async def test_failures_end_the_request_as_uvicorns_cycle_ends_it() -> None:
    async def after_head(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise RuntimeError("the body never comes")

    async def before_head(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("no answer at all")

    async def silent(scope: Any, receive: Any, send: Any) -> None:
        pass

    async def short(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})

    head = await same_bytes(after_head, request())
    assert head[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert head[0].endswith(b"\r\n\r\n")
    for app in (before_head, silent):
        assert (await same_bytes(app, request()))[0].startswith(b"HTTP/1.1 500 ")
    assert (await same_bytes(short, request()))[-1] == b"ab"


async def test_a_trusted_proxys_client_address_reaches_the_lane() -> None:
    clients = []

    async def seen(scope: Any, receive: Any, send: Any) -> None:
        clients.append(scope["client"])
        await answer(200, BODY, send)

    protocol, _ = connect(stack, Lane(seen), proxy_headers=True)  # 127.0.0.1 is trusted
    protocol.data_received(request(extra=b"x-forwarded-for: 203.0.113.7\r\n"))
    await settled(protocol)
    assert clients == [("203.0.113.7", 0)]


async def test_an_answered_request_is_freed_without_the_garbage_collector() -> None:
    protocol, transport = connect(stack, Lane(plain))
    protocol.data_received(request())
    await settled(protocol)
    cycle = weakref.ref(protocol.cycle)
    gc.disable()
    try:
        protocol.data_received(request())
        await settled(protocol)
        assert cycle() is None
    finally:
        gc.enable()
    assert len(transport.writes) == 2


@pytest.mark.parametrize(
    ("headers", "handed_over"),
    [
        ([(b"content-type", b"application/json"), (b"content-length", b"11")], True),
        ([(b"content-length", b"11"), (b"x-bad", b"a\r\nb")], False),  # uvicorn's 500
        ([(b"content-length", b"12")], False),  # a length the body does not have
        ([(b"content-type", b"application/json")], False),  # no length: chunked
    ],
    ids=["sized", "bad-header", "wrong-length", "unsized"],
)
async def test_an_answer_handed_over_whole_is_what_its_messages_write(
    headers: list[tuple[bytes, bytes]], handed_over: bool
) -> None:
    calls: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        """Writes as the pipeline's writer does: whole where ``send`` offers it."""
        whole = getattr(send, "whole", None)
        if whole is not None:
            calls.append(whole(200, headers, BODY))
            if calls[-1]:
                return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})

    writes = await same_bytes(app, request(extra=b"connection: close\r\n"))
    assert calls == [handed_over]  # asked on the lane only: uvicorn's own send has no whole
    assert len(writes) == 1 or not handed_over


async def test_an_app_wrapped_by_the_user_sees_every_prediction() -> None:
    """Their authentication, say: the lane is for modelport's own app (behind uvicorn's
    proxy-header handling at most), never around something else."""
    seen: list[str] = []

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await stack(scope, receive, send)

    lane = Lane(plain)
    lane.owner = stack  # the user's wrapper is what uvicorn is given
    for proxy_headers in (False, True):
        protocol, transport = connect(wrapper, lane, proxy_headers=proxy_headers)
        protocol.data_received(request())
        await settled(protocol)
        assert transport.writes[0].endswith(b"from the stack")
    assert seen == ["/x", "/x"]
    assert lane.taken == 0


async def test_uvicorns_access_log_keeps_every_prediction() -> None:
    """uvicorn writes its access log line from its own cycle: asked for, the lane steps aside."""
    lane = Lane(plain)
    protocol, transport = connect(stack, lane, access_log=True)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        protocol.data_received(request())
        await settled(protocol)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert lane.taken == 0
    assert transport.writes[0].endswith(b"from the stack")
    assert any('"POST /x HTTP/1.1" 200' in line for line in lines)


async def held(direct: bool, hold: str) -> tuple[list[bytes], list[bytes], Recording]:
    """A prediction whose answer meets ``hold`` (``"paused"``: the client reads too slowly, so
    the transport has paused writes; ``"shutdown"``: the server shuts down gracefully while the
    model works): what was written before the hold ends, and after."""
    asked, go = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        asked.set()
        if hold == "shutdown":
            await go.wait()
        await answer(200, BODY, send)  # paused: its head waits until writes resume

    lane = Lane(app) if direct else None
    protocol, transport = connect(app if lane is None else stack, lane)
    if hold == "paused":
        protocol.pause_writing()
    protocol.data_received(request())
    await asked.wait()
    if hold == "shutdown":
        protocol.shutdown()
        go.set()
    before = list(transport.writes)
    if hold == "paused":
        protocol.resume_writing()
    await settled(protocol)
    return before, transport.writes[len(before) :], transport


@pytest.mark.parametrize("hold", ["paused", "shutdown"])
async def test_paused_writes_and_a_graceful_shutdown_end_as_uvicorns_own_path(hold: str) -> None:
    lane_before, lane_after, lane_transport = await held(True, hold)
    own_before, own_after, own_transport = await held(False, hold)
    assert lane_before == own_before == []
    assert b"".join(lane_after) == b"".join(own_after)
    assert lane_after[-1].endswith(BODY)
    assert lane_transport.closed == own_transport.closed
    if hold == "shutdown":  # the answer says the connection ends, and it does
        assert b"\r\nconnection: close\r\n" in lane_after[0]
        assert lane_transport.closed
