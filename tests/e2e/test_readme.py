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


def _run_block(session: Session, found: list[Block], index: int) -> int:
    """Run block ``index`` (python or bash; others are skipped) and check the JSON after it;
    returns how many commands ran."""
    block, ran = found[index], 0
    if block.language == "python":
        (session.work / "snippet.py").write_text(session.localise(block.text))
        session.run("python snippet.py")
        return 1
    if block.language != "bash":
        return 0
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
    return ran


def test_every_readme_command_runs(tmp_path: Path) -> None:
    found = blocks(ROOT / "README.md")
    session = Session(tmp_path)
    try:
        ran = sum(_run_block(session, found, index) for index in range(len(found)))
    finally:
        session.stop()
    assert ran >= 10


def _key(block: Block) -> tuple[str, object]:
    if block.language == "bash":
        return block.language, tuple(commands(block.text))
    return block.language, block.text.strip()


def test_the_chinese_readme_runs_what_the_english_one_runs(tmp_path: Path) -> None:
    """README.zh-TW.md has the English README's blocks in the same order: the same commands
    (comments may be translated) are not run twice; a block of its own (Chinese example text)
    runs here, with its output checked."""
    english, chinese = blocks(ROOT / "README.md"), blocks(ROOT / "README.zh-TW.md")
    assert [b.language for b in chinese] == [b.language for b in english]
    pairs = enumerate(zip(english, chinese, strict=True))
    run = ("bash", "python", "json")  # what the English test runs or checks; yaml etc. is prose
    own = [i for i, (e, z) in pairs if z.language in run and _key(e) != _key(z)]
    assert all(chinese[i].language == "bash" for i in own), "only commands may differ"
    session = Session(tmp_path)
    try:
        ran = sum(_run_block(session, chinese, index) for index in own)
    finally:
        session.stop()
    assert len(own) <= 3  # more would mean the two READMEs drifted apart
    assert ran >= len(own)
