"""Driving a server with wrk and reading its report."""

from __future__ import annotations

import re
import resource
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.procs import machine_busy_s, tree_cpu_parts_s

LUA = Path(__file__).with_name("post.lua")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Load:
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    wrk_cores: float = float("nan")  # wrk's own, on the same machine
    machine_cores: float = float("nan")  # every process on the machine, neighbours included
    # the server's CPU seconds per second of the run in its main thread (one worker: the event
    # loop), its other threads, and its child processes (the outcome writer process)
    parts: tuple[float, float, float] = (float("nan"),) * 3

    @property
    def server_cores(self) -> float:
        """The server's CPU seconds per second of the run, all its parts together."""
        return sum(self.parts)

    @property
    def other_cores(self) -> float:
        """What neither the server nor wrk used: other people's work on a shared machine."""
        return max(self.machine_cores - self.server_cores - self.wrk_cores, 0.0)

    @property
    def server_us_per_request(self) -> float:
        return 1e6 * self.server_cores / self.rps if self.rps else float("nan")

    def part_us_per_request(self, which: int) -> float:
        """CPU µs per request of one of :attr:`parts`: 0 main thread, 1 other threads, 2 child
        processes."""
        return 1e6 * self.parts[which] / self.rps if self.rps else float("nan")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def parse(output: str, connections: int) -> Load:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = 0
    if found := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(found.group(1))
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in found.groups())
    return Load(connections, rps, p50, p99, errors)


def drive(url: str, connections: int, seconds: float, server_pid: int | None = None) -> Load:
    """One wrk run; with ``server_pid``, also the CPU the server's process tree and wrk used."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        url,
    ]
    parts_before = tree_cpu_parts_s(server_pid) if server_pid else (0.0, 0.0, 0.0)
    machine_before = machine_busy_s()
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    machine = (machine_busy_s() - machine_before) / wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = parse(done.stdout, connections)
    wrk_cpu = after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime
    load = replace(load, wrk_cores=wrk_cpu / wall, machine_cores=machine)
    if not server_pid:
        return load
    now = tree_cpu_parts_s(server_pid)
    # (a part read as the whole less the main thread can come out a tick below its start)
    main, threads, below = (max(a - b, 0.0) / wall for a, b in zip(now, parts_before, strict=True))
    return replace(load, parts=(main, threads, below))
