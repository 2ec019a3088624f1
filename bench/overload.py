"""Overload: 4,096 connections per worker against a deliberately slow model (issue 13's target).

The model takes 10 ms per batch of at most 8 rows (capacity: about 800 predictions/s per worker,
whatever the CPU), so the client is never the bottleneck at capacity. Each run measures, against
the same server:

- **capacity**: 16 connections per worker (two batches' worth: the model never idles);
- **overload**: 4,096 connections per worker.

Each load level first runs ``WARMUP_S`` unmeasured, in which every connection opens at the same
instant: that connection storm is reported on its own line ("opening"), and the targets are
judged on the seconds after it, the overload itself.

The targets, as ratios of the two phases: goodput (200s per second) at overload ≥ 80 % of
goodput at capacity; admitted requests' p99 (client-side) at overload ≤ 2x the p99 at capacity;
every other answer a 503 with ``Retry-After`` that came at once (its p99 is reported).

The client honours ``Retry-After``, as HTTP clients should (a load balancer retries elsewhere): a
client that resends at once makes the server spend its loop on refusals, which no admission
policy can avoid. It is a small HTTP/1.1 client on uvloop (an ``asyncio.Protocol`` per
connection), in one process; it shares the machine's cores with the server, which distorts the
latencies it measures on a small machine: when 4,096 refusals come back within a few
milliseconds of each other, an admitted answer among them waits for the client's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CARD = """runtime: fake
parameters: {delay_s: 0.01}
batching: {max_batch_size: 8}
"""
WARMUP_S = 1.0  # each phase's first second, when every connection opens at once: reported apart
CAPACITY_PER_WORKER = 16
OVERLOAD_PER_WORKER = 4096
REQUEST = (
    b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    b'Content-Length: 22\r\n\r\n{"x0": 1.0, "x1": 1.0}'
)


@dataclass
class Window:
    """What the client saw of the requests it sent in one stretch of time."""

    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    admitted_ms: list[float] = field(default_factory=list)
    refused_ms: list[float] = field(default_factory=list)

    def add(self, status: int, ms: float) -> None:
        self.statuses[status] += 1
        (self.admitted_ms if status == 200 else self.refused_ms).append(ms)

    @property
    def goodput(self) -> float:
        return self.statuses[200] / self.seconds

    @property
    def admitted_p99_ms(self) -> float:
        return _p99(self.admitted_ms)

    @property
    def refused_p99_ms(self) -> float:
        return _p99(self.refused_ms)


@dataclass
class Phase(Window):
    """One load level: the first ``WARMUP_S`` (every connection opening at once) in ``opening``,
    then ``seconds`` measured."""

    connections: int = 0
    measured_from: float = 0.0
    opening: Window = field(default_factory=lambda: Window(WARMUP_S))

    def record(self, started: float, status: int, ms: float) -> None:
        self.at(started).add(status, ms)

    def at(self, when: float) -> Window:
        return self if when >= self.measured_from else self.opening


@dataclass(frozen=True)
class Run:
    workers: int
    capacity: Phase
    overload: Phase

    @property
    def goodput_ratio(self) -> float:
        return self.overload.goodput / self.capacity.goodput if self.capacity.goodput else 0.0

    @property
    def p99_ratio(self) -> float:
        return self.overload.admitted_p99_ms / self.capacity.admitted_p99_ms

    @property
    def met(self) -> bool:
        others = set(self.overload.statuses) - {200, 503}
        return self.goodput_ratio >= 0.8 and self.p99_ratio <= 2 and not others


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * 0.99) - 1, 0)] if ordered else float("nan")


class _Client(asyncio.Protocol):
    """One keep-alive connection sending the request again as soon as it is answered (after
    ``Retry-After`` when one came). A plain ``asyncio.Protocol``: streams cost several times
    more per request, and the client shares the machine with the server."""

    def __init__(self, phase: Phase, deadline: float, reconnect: Callable[[], None]) -> None:
        self.phase, self.deadline, self.reconnect = phase, deadline, reconnect
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.started = 0.0
        self.waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if time.perf_counter() >= self.deadline:
            self.transport.close()
            return
        self.started = time.perf_counter()
        self.waiting = True
        self.transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length, retry = 0, 0.0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
                elif line.startswith(b"retry-after:"):
                    retry = float(line[12:])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            now = time.perf_counter()
            self.waiting = False
            self.phase.record(self.started, int(head[9:12]), (now - self.started) * 1000)
            if retry:
                asyncio.get_running_loop().call_later(retry, self.send)
            else:
                self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if time.perf_counter() < self.deadline:
            self.phase.at(time.perf_counter()).statuses[0] += 1  # closed by the server: reconnect
            self.reconnect()


async def _phase(port: int, connections: int, warmup: float, seconds: float) -> Phase:
    loop = asyncio.get_running_loop()
    phase = Phase(seconds, connections=connections, measured_from=time.perf_counter() + warmup)
    deadline = phase.measured_from + seconds
    done = loop.create_future()

    def connect() -> None:
        task = loop.create_task(
            loop.create_connection(lambda: _Client(phase, deadline, connect), "127.0.0.1", port)
        )
        task.add_done_callback(opened)

    def opened(task: asyncio.Task[Any]) -> None:
        if task.exception() is not None and time.perf_counter() < deadline:
            phase.at(time.perf_counter()).statuses[0] += 1
            loop.call_later(0.1, connect)

    for _ in range(connections):
        connect()
    loop.call_at(loop.time() + warmup + seconds + 1, done.set_result, None)
    await done
    return phase


def _run(coroutine: object) -> Phase:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(coroutine)  # type: ignore[arg-type,no-any-return]
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def run(port: int, seconds: float, workers: int) -> Run:
    capacity = _run(_phase(port, CAPACITY_PER_WORKER * workers, WARMUP_S, seconds))
    overload = _run(_phase(port, OVERLOAD_PER_WORKER * workers, WARMUP_S, seconds))
    return Run(workers, capacity, overload)


def lines(runs: list[Run]) -> list[str]:
    """The report's section."""
    if not runs:
        return ["Not measured in this run."]
    table = [
        "| workers | connections | 200/s | admitted p99 ms | 503 p99 ms | statuses |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    verdicts = []
    for r in runs:
        rows: list[tuple[Window, str]] = [
            (r.capacity, f"{r.capacity.connections}"),
            (r.overload, f"{r.overload.connections}"),
            (r.overload.opening, f"{r.overload.connections} (opening)"),
        ]
        for p, connections in rows:
            table.append(
                f"| {r.workers} | {connections} | {p.goodput:,.0f} | "
                f"{p.admitted_p99_ms:.1f} | {p.refused_p99_ms:.1f} | {dict(p.statuses)} |"
            )
        verdicts.append(
            f"{r.workers} worker(s): goodput at overload {100 * r.goodput_ratio:.0f} % of capacity "
            f"(target ≥ 80 %), admitted p99 {r.p99_ratio:.2f}x capacity's (target ≤ 2x): "
            f"{'met' if r.met else 'missed'}."
        )
    note = (
        f"Each load level runs {WARMUP_S:g} s before it is measured: every connection opens in"
        " that first second (“opening”: all 4,096 per worker at the same instant, which is a"
        " connection storm rather than steady overload), and its numbers are shown apart; the"
        " verdicts use the measured seconds after it. Status 0 counts connections the server"
        " closed (or refused) and the client reopened. The client is one Python process on the"
        " same cores as the server."
    )
    return [*table, "", *verdicts, "", note]
