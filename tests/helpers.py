"""Shared test helpers: writing model repositories and running a real server process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def write_fake_model(
    repo: Path, folder_name: str, versions: Sequence[int] = (1,), **card: Any
) -> Path:
    """A model served by the fake runtime: ``card`` becomes its modelport.yaml."""
    folder = repo / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    for version in versions:
        (folder / str(version)).mkdir(exist_ok=True)
        (folder / str(version) / "model.fake").write_text("fake\n")
    (folder / "modelport.yaml").write_text(yaml.safe_dump({"runtime": "fake", **card}))
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Poll ``/ready`` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout_s}s")


class Server:
    """A real modelport server process on loopback."""

    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        command = [
            sys.executable,
            "-m",
            "modelport",
            "serve",
            *args,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout_s: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()
        return self.process.returncode


@contextlib.contextmanager
def running_server(
    args: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    server = Server(args, log, env)
    try:
        wait_until_ready(server.url, server.process)
        yield server
    except BaseException:
        server.stop()
        print(server.output())
        raise
    else:
        server.stop()


def copy_repository(source: Path, target: Path) -> Path:
    """Copy a model repository and its trusted pins (the lock beside it), as a deploy would."""
    import shutil

    from modelport.model.pins import Pins

    shutil.copytree(source, target)
    lock = Pins.default(source).lock
    if lock.is_file():
        shutil.copy(lock, Pins.default(target).lock)
    return target
