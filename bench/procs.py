"""Starting servers, timing their cold start, and measuring their memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        stack.extend(_children(current))
    return total / 1024


@dataclass
class Running:
    url: str
    pid: int
    cold_start_s: float
    idle_rss_mb: float
    worker_rss_mb: float


@contextlib.contextmanager
def serve(
    command: Sequence[str], port: int, ready_path: str, cwd: Path, env: dict[str, str], log: Path
) -> Iterator[Running]:
    """Start a server, wait until ``ready_path`` answers 200, yield it, stop it by its group."""
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        while not _ok(url + ready_path):
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited early; see {log}")
            if time.perf_counter() - started > 120:
                raise TimeoutError(f"{command} not ready after 120 s; see {log}")
            time.sleep(0.02)
        cold = time.perf_counter() - started
        time.sleep(1.0)  # let start-up settle before measuring idle memory
        workers = _children(process.pid) or [process.pid]
        yield Running(url, process.pid, cold, tree_rss_mb(process.pid), tree_rss_mb(workers[-1]))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
