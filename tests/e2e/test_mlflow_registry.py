"""Serving straight from a real MLflow registry: aliases that roll out by themselves.

One ``mlflow server`` (sqlite store, served artifacts) for the module; models are registered
through the MLflow client. The last tests stop it, to check that serving goes on and that a
restart serves from the cache.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from tests.e2e.mlflow_registry import Registrar, mlflow_server, stop
from tests.e2e.test_readme import FENCE, ROOT, Block, commands
from tests.helpers import IRIS_ROW, Server, free_port, wait_until_ready

# the MLflow server alone takes a minute to start on 2 busy cores
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

POLL = "0.3"  # seconds between alias checks in these tests (the default is 5)


def section(readme: Path) -> list[Block]:
    """The code blocks of the README's MLflow registry section."""
    text = readme.read_text()
    start = text.index("<!-- mlflow-registry:")
    end = text.index("\n## ", start)
    return [Block(m.group(1), m.group(2)) for m in FENCE.finditer(text[start:end])]


def readme_commands(found: list[Block]) -> list[Iterator[str]]:
    return [commands(b.text) for b in found if b.language == "sh"]


class Registry:
    def __init__(self, url: str, process: subprocess.Popen[bytes], registrar: Registrar) -> None:
        self.url, self.process, self.registrar = url, process, registrar
        self.versions: dict[str, int] = {}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("mlflow")
    command = next(readme_commands(section(ROOT / "README.md"))[0])
    with mlflow_server(folder, command) as (url, process):
        registrar = Registrar(url)
        found = Registry(url, process, registrar)
        x, y = registrar.x, registrar.y
        found.versions["good1"] = registrar.sklearn(
            "flowers", LogisticRegression(max_iter=500).fit(x, y)
        )
        found.versions["good2"] = registrar.sklearn(
            "flowers", LogisticRegression(C=0.05, max_iter=500).fit(x, y)
        )
        # a signature of 3 columns for a model of 4: modelport refuses to load it
        found.versions["broken"] = registrar.sklearn(
            "flowers", LogisticRegression(max_iter=500).fit(x, y), columns=3
        )
        registrar.xgboost("flowers-xgb")
        registrar.onnx("flowers-onnx")
        registrar.pyfunc("echo")
        for name in ("flowers-xgb", "flowers-onnx", "echo"):
            registrar.alias(name, "champion", 1)
        yield found


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _env(registry: Registry, cache: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": registry.url,
        "MODELPORT_REGISTRY_CACHE": str(cache),
        "MODELPORT_REGISTRY_POLL_INTERVAL": POLL,
        "MODELPORT_OUTCOMES": "false",
    }


def _start(args: list[str], log: Path, env: dict[str, str]) -> Server:
    server = Server(args, log, env)
    try:
        wait_until_ready(server.url, server.process, timeout_s=240)
    except BaseException:
        server.stop()
        print(server.output())
        raise
    return server


def _version(url: str) -> int:
    answer = httpx.post(f"{url}/predict", json=IRIS_ROW, timeout=30)
    assert answer.status_code == 200, answer.text
    return int(answer.headers["x-model-version"])


def _wait_for_version(url: str, version: int, timeout_s: float, in_a_row: int = 20) -> float:
    """Seconds until ``in_a_row`` answers in a row (every worker) came from ``version``."""
    started = time.monotonic()
    streak = 0
    while streak < in_a_row:
        assert time.monotonic() - started < timeout_s, f"v{version} not served in {timeout_s}s"
        streak = streak + 1 if _version(url) == version else 0
    return time.monotonic() - started


class Load:
    """A steady stream of predictions from a few threads; every answer must be a 200."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.answers = 0
        self.failures: list[str] = []
        self.pool = ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self._loop) for _ in range(threads)]

    def _loop(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    answer = client.post(f"{self.url}/predict", json=IRIS_ROW)
                except httpx.TransportError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.answers += 1
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code} {answer.text}")

    def finish(self) -> None:
        self.stop.set()
        for future in self.futures:
            future.result()
        self.pool.shutdown()


def _models(url: str) -> dict[str, Any]:
    return {m["name"]: m for m in httpx.get(f"{url}/models", timeout=10).json()["models"]}


def test_sklearn_xgboost_onnx_serve_with_the_signature_fields(
    registry: Registry, cache: Path, tmp_path: Path
) -> None:
    """A folder repository whose cards name registry models, beside a folder model."""
    registry.registrar.alias("flowers", "champion", registry.versions["good1"])
    repo = tmp_path / "models"
    for name in ("flowers", "flowers-xgb", "flowers-onnx"):
        (repo / name).mkdir(parents=True)
        card = {"source": f"models:/{name}@champion"}
        (repo / name / "modelport.yaml").write_text(yaml.safe_dump(card))
    server = _start([str(repo)], tmp_path / "server.log", _env(registry, cache))
    try:
        models = _models(server.url)
        for name in ("flowers", "flowers-xgb", "flowers-onnx"):
            fields = [f["name"] for f in models[name]["signature"]["inputs"]]
            assert fields == list(IRIS_ROW), name
            assert models[name]["source"]["uri"] == f"models:/{name}@champion"
            answer = httpx.post(f"{server.url}/models/{name}/predict", json=IRIS_ROW, timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["prediction"] == 0, name  # setosa, class 0
            assert answer.headers["x-model-version"] == "1"
        missing = httpx.post(f"{server.url}/models/flowers/predict", json={"sepal_length": 1.0})
        assert missing.status_code == 422
        assert "sepal_width" in missing.text
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_moved_alias_rolls_out_under_load_and_a_broken_version_keeps_the_old(
    registry: Registry, cache: Path, tmp_path: Path, workers: int
) -> None:
    alias = f"live{workers}"
    good1, good2 = registry.versions["good1"], registry.versions["good2"]
    registry.registrar.alias("flowers", alias, good1)
    args = [f"models:/flowers@{alias}", "--workers", str(workers)]
    server = _start(args, tmp_path / "server.log", _env(registry, cache))
    try:
        assert _version(server.url) == good1
        load = Load(server.url)
        try:
            registry.registrar.alias("flowers", alias, good2)
            took = _wait_for_version(server.url, good2, timeout_s=60)
            registry.registrar.alias("flowers", alias, good1)  # moving it back is a rollback
            _wait_for_version(server.url, good1, timeout_s=60)
        finally:
            load.finish()
        assert load.failures == [], load.failures[:5]
        assert load.answers > 50
        print(f"v{good2} served everywhere {took:.1f} s after the alias moved")
        broken = registry.versions["broken"]
        registry.registrar.alias("flowers", alias, broken)
        deadline = time.monotonic() + 60
        while True:  # every worker tried it, and keeps serving the old one
            versions = {v["version"]: v for v in _models(server.url)["flowers"]["versions"]}
            if broken in versions and versions[broken]["state"] == "failed":
                break
            assert time.monotonic() < deadline, versions
            time.sleep(0.1)
        assert "3 inputs but the model takes 4" in str(versions[broken]), versions[broken]
        for _ in range(20):
            assert _version(server.url) == good1
    finally:
        server.stop()


def test_pyfunc_only_is_refused_without_trust_and_served_by_the_printed_command(
    registry: Registry, cache: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "serve", "models:/echo@champion"],
        env={**_current_env(), **_env(registry, cache)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())  # the console wraps long lines
    assert "it has only the MLflow python_function flavor" in said
    assert "modelport serve models:/echo@champion --trust models:/echo" in said
    # the hint, run as printed (plus a loopback port): the trusted model is served
    printed = shlex.split(said[said.index("If you trust it: ") + len("If you trust it: ") :])
    assert printed[:2] == ["modelport", "serve"]
    server = _start(printed[2:], tmp_path / "server.log", _env(registry, cache))
    try:
        assert "echo" in _models(server.url)
        answer = httpx.post(f"{server.url}/models/echo/predict", json={"text": "hi"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert "hi" in answer.text  # the model's own code answered
    finally:
        server.stop()


def test_import_copies_a_version_into_a_folder_repository(
    registry: Registry, cache: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "models"
    env = {**_current_env(), **_env(registry, cache)}
    command = [sys.executable, "-m", "modelport"]
    done = subprocess.run(
        [*command, "import", "models:/flowers-xgb/1", "--repo", str(repo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    card = yaml.safe_load((repo / "flowers-xgb" / "modelport.yaml").read_text())
    assert "source" not in card
    assert card["runtime"] == "xgboost"
    assert (repo / "flowers-xgb" / "1" / "MANIFEST.sha256").is_file()
    offline = {**env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # no registry needed now
    checked = subprocess.run(
        [*command, "validate", str(repo)], env=offline, capture_output=True, text=True, timeout=240
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _background(command: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with (cwd / "serve.log").open("wb") as log:  # the child keeps its own copy of the file
        return subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_the_readme_section_runs(registry: Registry, cache: Path, tmp_path: Path) -> None:
    """Every command of the README's MLflow section, in order, against the module's MLflow
    server (started with the section's own `mlflow server` command), in both languages."""
    english = section(ROOT / "README.md")
    assert [b.text for b in section(ROOT / "README.zh-TW.md")] == [b.text for b in english]
    env = {**_current_env(), **_env(registry, cache), "MODELPORT_REGISTRY_POLL_INTERVAL": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    port = free_port()
    server: subprocess.Popen[bytes] | None = None
    outputs: list[str] = []

    def run(command: str) -> None:
        command = command.replace("--port 8000", f"--port {port}")
        command = command.replace("localhost:8000", f"127.0.0.1:{port}")
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)

    try:
        for block in english:
            if block.language == "py":  # not `python`: test_readme.py would run it alone
                (tmp_path / "snippet.py").write_text(block.text)
                run("python snippet.py")
                if server is not None:  # the alias moved: every answer comes from v2
                    _wait_for_version(f"http://127.0.0.1:{port}", 2, timeout_s=60)
                continue
            for command in readme_commands([block])[0] if block.language == "sh" else []:
                if command.startswith(("mlflow server", "export MLFLOW_TRACKING_URI=")):
                    continue  # the module's server runs this very command; env points at it
                if command.startswith("modelport serve"):
                    server = _background(
                        command.replace("--port 8000", f"--port {port}"), env, tmp_path
                    )
                    wait_until_ready(f"http://127.0.0.1:{port}", server, timeout_s=240)
                    continue
                run(command)
    finally:
        if server is not None:
            stop(server)
    said = "\n".join(outputs).lower()
    assert "x-model-version: 1" in said
    assert 'modelport_registry_polls_total{model="iris",result="ok"}' in said
    assert "Imported models:/iris/2" in "\n".join(outputs)


def test_a_stopped_registry_keeps_serving_and_a_restart_serves_from_the_cache(
    registry: Registry, cache: Path, tmp_path: Path
) -> None:
    """Last: it stops the module's MLflow server."""
    registry.registrar.alias("flowers", "champion", registry.versions["good2"])
    env = _env(registry, cache)
    server = _start(["models:/flowers@champion"], tmp_path / "server.log", env)
    try:
        assert _version(server.url) == registry.versions["good2"]
        stop(registry.process)
        deadline = time.monotonic() + 60
        while _failed_polls(server.url) < 3:
            assert time.monotonic() < deadline, "no failed poll counted"
            time.sleep(0.1)
        for _ in range(20):
            assert _version(server.url) == registry.versions["good2"]
        source = _models(server.url)["flowers"]["source"]
        assert source["reachable"] is False
        assert source["failed_polls"] >= 3
    finally:
        server.stop()
    again = _start(["models:/flowers@champion"], tmp_path / "again.log", env)
    try:
        assert _version(again.url) == registry.versions["good2"]
    finally:
        again.stop()
    assert "serving models:/flowers@champion v2 from the cache" in again.output()


def _failed_polls(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('modelport_registry_polls_total{model="flowers",result="failed"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _current_env() -> dict[str, str]:
    import os

    return dict(os.environ)
