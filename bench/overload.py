"""Overload: 4,096 connections per worker against a deliberately slow model (issue 13's target).

The model takes 10 ms per batch of at most 8 rows (capacity: about 800 predictions/s per worker,
whatever the CPU), so the client is never the bottleneck at capacity. Each run measures, against
the same server:

- **capacity**: 16 connections per worker (two batches' worth: the model never idles);
- **overload**: 4,096 connections per worker.

The targets, as ratios of the two phases: goodput (200s per second) at overload ≥ 80 % of
goodput at capacity; admitted requests' p99 (client-side) at overload ≤ 2x the p99 at capacity;
every other answer a 503 with ``Retry-After`` that came at once (its p99 is reported).

The client honours ``Retry-After``, as HTTP clients should (a load balancer retries elsewhere): a
client that resends at once makes the server spend its loop on refusals, which no admission
policy can avoid. It is a small raw-socket HTTP/1.1 client on uvloop, in one process; it shares
the machine's cores with the server, which distorts the latencies it measures on a small machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

CARD = """runtime: fake
parameters: {delay_s: 0.01}
batching: {max_batch_size: 8}
"""
CAPACITY_PER_WORKER = 16
OVERLOAD_PER_WORKER = 4096
REQUEST = (
    b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    b'Content-Length: 22\r\n\r\n{"x0": 1.0, "x1": 1.0}'
)


@dataclass
class Phase:
    connections: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    admitted_ms: list[float] = field(default_factory=list)
    refused_ms: list[float] = field(default_factory=list)

    @property
    def goodput(self) -> float:
        return self.statuses[200] / self.seconds

    @property
    def admitted_p99_ms(self) -> float:
        return _p99(self.admitted_ms)

    @property
    def refused_p99_ms(self) -> float:
        return _p99(self.refused_ms)


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


async def _answer(reader: asyncio.StreamReader) -> tuple[int, float]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, retry = 0, 0.0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line[15:])
        elif line.startswith(b"retry-after:"):
            retry = float(line[12:])
    await reader.readexactly(length)
    return status, retry


async def _connection(port: int, phase: Phase, deadline: float) -> None:
    while time.perf_counter() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            phase.statuses[0] += 1
            await asyncio.sleep(0.1)
            continue
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(REQUEST)
                status, retry = await _answer(reader)
                took = (time.perf_counter() - started) * 1000
                phase.statuses[status] += 1
                (phase.admitted_ms if status == 200 else phase.refused_ms).append(took)
                if retry:
                    await asyncio.sleep(retry)
        except (OSError, asyncio.IncompleteReadError):
            phase.statuses[0] += 1  # closed by the server: reconnect
        finally:
            writer.close()


async def _phase(port: int, connections: int, seconds: float) -> Phase:
    phase = Phase(connections, seconds)
    deadline = time.perf_counter() + seconds
    tasks = [asyncio.ensure_future(_connection(port, phase, deadline)) for _ in range(connections)]
    await asyncio.wait(tasks, timeout=seconds + 30)
    for task in tasks:
        task.cancel()
    return phase


def _run(coroutine: object) -> Phase:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(coroutine)  # type: ignore[arg-type,no-any-return]
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def run(port: int, seconds: float, workers: int) -> Run:
    capacity = _run(_phase(port, CAPACITY_PER_WORKER * workers, seconds))
    overload = _run(_phase(port, OVERLOAD_PER_WORKER * workers, seconds))
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
        for p in (r.capacity, r.overload):
            table.append(
                f"| {r.workers} | {p.connections} | {p.goodput:,.0f} | "
                f"{p.admitted_p99_ms:.1f} | {p.refused_p99_ms:.1f} | {dict(p.statuses)} |"
            )
        verdicts.append(
            f"{r.workers} worker(s): goodput at overload {100 * r.goodput_ratio:.0f} % of capacity "
            f"(target ≥ 80 %), admitted p99 {r.p99_ratio:.2f}x capacity's (target ≤ 2x): "
            f"{'met' if r.met else 'missed'}."
        )
    note = (
        "Status 0 counts connections the server closed (or refused) and the client reopened. "
        "The client is one Python process on the same cores as the server."
    )
    return [*table, "", *verdicts, "", note]
