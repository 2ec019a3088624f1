"""Paired rounds: the servers a ratio compares, up together and driven in turn.

A ratio of two 5-second runs taken a minute apart moves by ±10 % on a shared machine (its
neighbours come and go). Here every server of a comparison is started once and warmed up by a
second of load, then each round drives each of them for the same time, one after the other (the
order rotates from round to round); each round gives one ratio from runs seconds apart, and the
target reads the median of the rounds' ratios. The report lists every round.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Running, free_port, serve
from bench.wrk import Load, drive

__all__ = ["Rounds", "Server", "lines", "run"]


@dataclass(frozen=True)
class Server:
    """One server to start: ``command`` gets the port to bind."""

    name: str
    command: Callable[[int], list[str]]
    ready: str
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Rounds:
    """Each server's load in each round, serving ``model`` at ``connections``."""

    model: str
    connections: int
    seconds: float
    loads: dict[str, list[Load]] = field(default_factory=dict)

    @property
    def at(self) -> str:
        """``64 connections`` or ``1 connection``."""
        return f"{self.connections} connection{'' if self.connections == 1 else 's'}"

    def measured(self, model: str, connections: int, *names: str) -> bool:
        """Whether these rounds drove every one of ``names`` serving ``model`` at
        ``connections``."""
        return (model, connections) == (self.model, self.connections) and all(
            name in self.loads for name in names
        )

    def ratios(self, name: str, base: str, which: str = "rps") -> list[float]:
        """``name``'s req/s (``which="rps"``) or latency (``"p50"``, ``"p99"``) over ``base``'s,
        round by round."""
        attr = which if which == "rps" else f"{which}_ms"
        return [
            getattr(x, attr) / getattr(b, attr)
            for x, b in zip(self.loads[name], self.loads[base], strict=True)
        ]

    def ratio(self, name: str, base: str, which: str = "rps") -> float:
        """The median of the rounds' ratios."""
        return statistics.median(self.ratios(name, base, which))

    def describe(self, name: str, base: str, which: str = "rps") -> str:
        """``median of 3 paired rounds (4.19, 4.08, 4.03)``."""
        each = ", ".join(f"{v:.2f}" for v in self.ratios(name, base, which))
        return f"median of {len(self.loads[name])} paired rounds ({each})"

    def middle(self, name: str, base: str, which: str = "rps") -> tuple[Load, Load]:
        """The loads of the round whose ratio is the median (the lower middle for an even
        count): what a reason quotes."""
        ratios = self.ratios(name, base, which)
        r = sorted(range(len(ratios)), key=ratios.__getitem__)[(len(ratios) - 1) // 2]
        return self.loads[name][r], self.loads[base][r]

    def median(self, name: str) -> Load:
        """The round whose req/s is ``name``'s median (the lower middle for an even count)."""
        ordered = sorted(self.loads[name], key=lambda x: x.rps)
        return ordered[(len(ordered) - 1) // 2]

    def latency(self, name: str, which: str) -> float:
        """The median of ``name``'s ``which`` latency (``"p50"``, ``"p99"``) over the rounds."""
        return float(statistics.median(getattr(x, f"{which}_ms") for x in self.loads[name]))


def run(
    servers: list[Server], model: str, connections: int, seconds: float, rounds: int, logs: Path
) -> Rounds:
    """Start every server (each serving ``model``), then drive each in turn, ``rounds``
    times."""
    result = Rounds(model, connections, seconds, {s.name: [] for s in servers})
    with contextlib.ExitStack() as stack:
        running: list[tuple[Server, Running]] = []
        for s in servers:
            port = free_port()
            name = f"paired-{model}-{connections}-{s.name}.log"
            log = logs / name.replace(" ", "_").replace(",", "")
            running.append((s, stack.enter_context(serve(s.command(port), port, s.ready, s.cwd,
                                                               s.env, log))))  # fmt: skip
        for _s, up in running:  # unmeasured: each server's first second of load warms it up
            drive(up.url + "/predict", connections, min(1.0, seconds))
        for r in range(rounds):
            print(f"  paired round {r + 1} of {rounds} ...", flush=True)
            for i in range(len(running)):
                s, up = running[(i + r) % len(running)]
                load = drive(up.url + "/predict", connections, seconds, up.pid)
                result.loads[s.name].append(load)
    return result


def lines(rounds: Rounds, pairs: list[tuple[str, str, str, str]]) -> list[str]:
    """The report's section: each round's req/s (and p50 / p99 where a pair compares
    latencies), and each pair's ratio per round and median; ``pairs`` are ``(label, name, base,
    which)``, ``which`` as :meth:`Rounds.ratios` takes it."""
    names = list(rounds.loads)
    count = len(rounds.loads[names[0]])
    latency = any(which != "rps" for *_, which in pairs)
    unit = "req/s; p50 / p99 ms" if latency else "req/s"
    table = [
        "| round | " + " | ".join(f"{n} {unit}" for n in names) + " | "
        + " | ".join(label for label, *_ in pairs) + " |",
        "|---:|" + "---:|" * (len(names) + len(pairs)),
    ]  # fmt: skip
    for r in range(count):
        cells = " | ".join(_cell(rounds.loads[n][r], latency) for n in names)
        ratios = " | ".join(f"{rounds.ratios(n, b, w)[r]:.2f}" for _, n, b, w in pairs)
        table.append(f"| {r + 1} | {cells} | {ratios} |")
    medians = " | ".join(
        f"{rounds.median(n).rps:,.0f}"
        + (f"; {rounds.latency(n, 'p50'):.2f} / {rounds.latency(n, 'p99'):.2f}" if latency else "")
        for n in names
    )
    ratios = " | ".join(f"**{rounds.ratio(n, b, w):.2f}**" for _, n, b, w in pairs)
    table.append(f"| median | {medians} | {ratios} |")
    together = "Both servers" if len(names) == 2 else f"All {len(names)} servers"
    note = (
        f"{together} up at once, each driven for {rounds.seconds:g} s at "
        f"{rounds.at} in every round, in an order that rotates (the "
        "others idle meanwhile); a ratio's median is the median of its rounds' ratios (runs "
        "seconds apart, not minutes)."
    )
    return [*table, "", note]


def _cell(load: Load, latency: bool) -> str:
    if not latency:
        return f"{load.rps:,.0f}"
    return f"{load.rps:,.0f}; {load.p50_ms:.2f} / {load.p99_ms:.2f}"
