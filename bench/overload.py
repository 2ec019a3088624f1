"""Overload: many more connections than a deliberately slow model can serve.

Every request must be answered (200, or 503 with Retry-After when the queue is full), and the
requests that are admitted must keep their latency: p99 at 256 connections within 2x the p99 at
the model's capacity. The client honours ``Retry-After``, as HTTP clients should.

The bound comes from the queue: an admitted request waits for at most ``max_queue /
max_batch_size`` batches before its own, so its latency stays under ``(16 / 8 + 1) x 10 ms`` plus
overhead however many clients knock."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import httpx2 as httpx

BODY = {"x0": 1.0, "x1": 1.0}
CARD = """runtime: fake
parameters: {delay_s: 0.01}
batching: {max_batch_size: 8, max_queue: 16}
"""


@dataclass(frozen=True)
class Phase:
    connections: int
    statuses: dict[int, int]
    admitted_p99_ms: float
    server_p99_ms: float
    answered: int
    sent: int


async def _phase(url: str, connections: int, seconds: float) -> Phase:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    server: list[float] = []
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() < deadline:
                sent += 1
                started = time.perf_counter()
                try:
                    response = await client.post(f"{url}/predict", json=BODY)
                except httpx.HTTPError:
                    statuses[0] += 1  # no answer at all
                    continue
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                    timing = response.headers.get("server-timing", "app;dur=nan")
                    server.append(float(timing.split("dur=")[1]))
                elif response.status_code == 503:  # a well-behaved client honours Retry-After
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))

        await asyncio.gather(*(worker() for _ in range(connections)))
    answered = sum(n for code, n in statuses.items() if code)
    return Phase(connections, dict(statuses), _p99(latencies), _p99(server), answered, sent)


def _p99(values: list[float]) -> float:
    values = sorted(values)
    return values[max(int(len(values) * 0.99) - 1, 0)] if values else float("nan")


def run(url: str, seconds: float) -> tuple[Phase, Phase]:
    capacity = asyncio.run(_phase(url, 8, seconds))
    overload = asyncio.run(_phase(url, 256, seconds))
    return capacity, overload
