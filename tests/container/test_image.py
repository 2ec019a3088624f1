"""The Docker image, built and run for real on a local engine (scripts/docker-engine.sh).

The engine and the python:3.11-slim stand-in are made when missing (this machine reaches no image
registry); what this module starts it stops by PID once no test process uses it, and the
container and image are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.helpers import IRIS_ROW, free_port

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "modelport-iris:test"
ENV = {"DOCKER_BUILDKIT": "0", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def docker(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, env=ENV, check=False
    )
    assert done.returncode == 0, f"docker {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


@contextlib.contextmanager
def _users(state: Path) -> Iterator[list[int]]:
    """How many test processes use the engine, read and written under one lock: ``make test``
    runs two (pytest-xdist), and the last one out stops the engine, never one still in use."""
    with (Path(tempfile.gettempdir()) / "modelport-docker.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        count = state / "users"
        users = [int(count.read_text())] if count.is_file() else [0]
        yield users
        if users[0]:
            state.mkdir(parents=True, exist_ok=True)
            count.write_text(str(users[0]))
        else:
            count.unlink(missing_ok=True)


def _leftovers() -> set[str]:
    """Stopped containers and untagged images: what a build leaves behind (a multi-stage build's
    first stage, a failed step's container and layers)."""
    containers = docker("ps", "-aq", "--no-trunc", "--filter", "status=exited")
    created = docker("ps", "-aq", "--no-trunc", "--filter", "status=created")
    images = docker("images", "-q", "--no-trunc", "--filter", "dangling=true")
    return set((containers + "\n" + created + "\n" + images).split())


def _sweep(before: set[str]) -> None:
    """Remove the leftovers the tests made, none that were there before: each run of the suite
    would otherwise leave about 2 GB of images on the machine."""
    made = _leftovers() - before
    containers = [ref for ref in made if not ref.startswith("sha256:")]
    images = [ref for ref in made if ref.startswith("sha256:")]
    if containers:
        docker("rm", "-f", *containers)
    if images:
        subprocess.run(["docker", "rmi", *images], capture_output=True, env=ENV, check=False)


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    state = ROOT / ".docker-state"
    script = ROOT / "scripts" / "docker-engine.sh"
    env = {"MODELPORT_DOCKER_STATE": str(state), "PATH": ENV["PATH"]}
    before = state / "leftovers-before"
    with _users(state) as users:
        if users[0] == 0:
            subprocess.run(["bash", str(script), "up"], check=True, timeout=600, env=env)
            before.write_text("\n".join(sorted(_leftovers())))
        users[0] += 1
    yield
    with _users(state) as users:
        users[0] -= 1
        if users[0] == 0:  # no test process builds now: what is left over is the tests'
            _sweep(set(before.read_text().split()))
            subprocess.run(["bash", str(script), "down"], check=False, timeout=60, env=env)
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def image(engine: None) -> Iterator[str]:
    docker("build", "--network", "host", "-t", IMAGE, str(ROOT), timeout=900)
    yield IMAGE
    docker("rmi", "-f", IMAGE)


def wait_ready(port: int, container: str) -> str:
    """Poll the container's /ready until 200; its logs if it never comes."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, docker("logs", container)
        time.sleep(0.2)


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_image_serves_the_tutorial_and_stops_cleanly(image: str) -> None:
    port = free_port()
    name = f"modelport-test-{port}"
    container = docker(
        "run", "-d", "--network", "host", "-e", f"PORT={port}", "--name", name, image
    )
    try:
        url = wait_ready(port, container)
        answer = httpx.post(f"{url}/predict", json=IRIS_ROW).json()
        assert answer["prediction"] == "setosa"
        assert docker("exec", container, "id", "-u") == "10001"
        assert docker("inspect", "-f", "{{.Config.User}}", image) == "10001"
        size_mb = int(docker("image", "inspect", "-f", "{{.Size}}", image)) / 1e6
        print(f"image size: {size_mb:.0f} MB")
        docker("stop", "-t", "30", container)
        assert docker("inspect", "-f", "{{.State.ExitCode}}", container) == "0"
        logs = subprocess.run(
            ["docker", "logs", container], capture_output=True, text=True, env=ENV, check=False
        )
        assert "Shutting down: Master" in logs.stdout + logs.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, env=ENV, check=False)
