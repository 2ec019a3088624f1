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
from dataclasses import dataclass, field
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
    total = 0
    for current in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _tree(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(_children(current))
    return found


def _cpu_s(stat: Path) -> float:
    """User + system CPU seconds in a ``/proc`` ``stat`` file (0 once the task is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def tree_cpu_parts_s(pid: int) -> tuple[float, float, float]:
    """CPU seconds used so far by a process's main thread (a one-worker server's event loop),
    its other threads (the model's, the outcome writer's), and its live descendants (the outcome
    writer process)."""
    whole = _cpu_s(Path(f"/proc/{pid}/stat"))
    main = _cpu_s(Path(f"/proc/{pid}/task/{pid}/stat"))
    below = sum(_cpu_s(Path(f"/proc/{child}/stat")) for child in _tree(pid)[1:])
    return main, max(whole - main, 0.0), below


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy (not idle, not waiting on I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    guest = sum(fields[8:10])  # already counted in user and nice
    return (sum(fields) - idle - guest) / os.sysconf("SC_CLK_TCK")


def mapped_files_mb(pid: int) -> dict[str, float]:
    """Resident MB of each file mapped into one process (shared libraries, mostly)."""
    sizes: dict[str, float] = {}
    current = ""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and not head[0].endswith(":"):  # a mapping's header line
                current = head[5] if len(head) > 5 and head[5].startswith("/") else ""
            elif head[0] == "Rss:" and current:
                sizes[current] = sizes.get(current, 0.0) + int(head[1]) / 1024
    return sizes


def rss_split_mb(pid: int) -> tuple[float, float]:
    """(anonymous, file-backed) resident MB of one process."""
    values = {"RssAnon:": 0.0, "RssFile:": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            head = line.split()
            if head and head[0] in values:
                values[head[0]] = int(head[1]) / 1024
    return values["RssAnon:"], values["RssFile:"]


@dataclass
class Running:
    url: str
    pid: int
    cold_start_s: float
    idle_rss_mb: float
    worker_rss_mb: float
    anon_mb: float = 0.0
    file_mb: float = 0.0
    mapped_mb: dict[str, float] = field(default_factory=dict)


def _inherited() -> dict[str, str]:
    """This environment less modelport's settings, so "shipped defaults" means just that."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPORT_") and k not in ("WEB_CONCURRENCY", "PORT")
    }


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
            env={**_inherited(), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        while not _ok(url + ready_path):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{command[0]} exited early; its log ends:\n{tail}")
            if time.perf_counter() - started > 120:
                raise TimeoutError(f"{command} not ready after 120 s; see {log}")
            time.sleep(0.02)
        cold = time.perf_counter() - started
        time.sleep(1.0)  # let start-up settle before measuring idle memory
        workers = _children(process.pid) or [process.pid]
        anon, file = rss_split_mb(workers[-1])
        yield Running(
            url,
            process.pid,
            cold,
            tree_rss_mb(process.pid),
            tree_rss_mb(workers[-1]),
            anon,
            file,
            mapped_files_mb(workers[-1]),
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
