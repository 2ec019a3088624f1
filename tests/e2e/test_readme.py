"""Run every command of README.md and README.zh-TW.md as a new user would, in order.

``make test`` is the command running this test, so it is the one command skipped here. Servers
(`make serve`, `modelport serve`, `gunicorn`) start in the background on a free port and must
become ready; every other command must exit 0. Where a ``bash`` block is followed by a ``json``
block without elisions, the commands' output must be exactly that JSON.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until_ready

# every README command, each a new process: more than the default per-test timeout on 2 cores
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SERVER = re.compile(r"^(\w+=\S+\s+)*(make serve|\S*modelport serve|\S*gunicorn)\b")


@dataclass
class Block:
    language: str
    text: str


def blocks(readme: Path) -> list[Block]:
    return [Block(m.group(1), m.group(2)) for m in FENCE.finditer(readme.read_text())]


def commands(text: str) -> Iterator[str]:
    for line in text.replace("\\\n", " ").splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            yield command


class Session:
    """A new user's terminal: a work folder, one background server at a time."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.grpc_port = free_port()
        (work / ".venv").symlink_to(ROOT / ".venv")
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            # `make serve` trains into the same ./models the README then imports into, as for a
            # reader in the clone: the README must hold when followed in order
            "MODELPORT_MODELS": str(work / "models"),
            "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        }
        self.server: subprocess.Popen[bytes] | None = None

    def localise(self, command: str) -> str:
        for old, new in (
            ("localhost:8000", f"127.0.0.1:{self.port}"),
            ("--port 8000", f"--port {self.port}"),
            ("localhost:8001", f"127.0.0.1:{self.grpc_port}"),
            ("--grpc-port 8001", f"--grpc-port {self.grpc_port}"),
        ):
            command = command.replace(old, new)
        return command

    def start(self, command: str) -> None:
        self.stop()
        cwd = ROOT if command.startswith("make") else self.work
        with (self.work / "server.log").open("ab") as log:
            self.server = subprocess.Popen(
                ["bash", "-c", self.localise(command)],
                cwd=cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until_ready(f"http://127.0.0.1:{self.port}", self.server, timeout_s=120)
        except Exception:
            print((self.work / "server.log").read_text())
            raise

    def run(self, command: str) -> str:
        result = subprocess.run(
            ["bash", "-c", self.localise(command)],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait(30)
        self.server = None


def _close(actual: object, expected: object) -> bool:
    """Equal, with floats within 1e-3: the last printed digit of a probability moves with the
    installed numpy/scikit-learn, and the README shows what a reader sees."""
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return abs(actual - expected) <= 1e-3
    if isinstance(expected, dict) and isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(
            _close(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(map(_close, actual, expected))
    return actual == expected


@pytest.mark.parametrize("name", ["README.md", "README.zh-TW.md"])
def test_every_readme_command_runs(name: str, tmp_path: Path) -> None:
    found = blocks(ROOT / name)
    session = Session(tmp_path)
    ran = 0
    try:
        for index, block in enumerate(found):
            if block.language == "python":
                (tmp_path / "snippet.py").write_text(session.localise(block.text))
                session.run("python snippet.py")
                ran += 1
            if block.language != "bash":
                continue
            output = []
            for command in commands(block.text):
                if command.startswith("make test"):
                    continue  # CI runs it: it is what runs this test
                if SERVER.match(command):
                    session.start(command)
                else:
                    output.append(session.run(command))
                ran += 1
            following = found[index + 1] if index + 1 < len(found) else None
            if following and following.language == "json" and "..." not in following.text:
                expected = [json.loads(line) for line in following.text.splitlines() if line]
                actual = [json.loads(line) for text in output for line in text.splitlines()]
                assert _close(actual, expected), f"{actual} != {expected}"
    finally:
        session.stop()
    assert ran >= 10
