"""Every command modelport prints for a person to run is built in :mod:`modelport.hints`, and
works as printed: this module runs each one (a shell runs the printed text; only a port or a tmp
path is substituted), or says which test does.

- ``pip_extra``: names an extra pyproject.toml defines (here); tests/test_extras.py installs the
  example extras for real, in fresh venvs.
- ``pin``, ``trust``/``rerun_with_trust``, ``pip_package``, ``pip_source``: run here.
- ``serve_trusted``: tests/e2e/test_mlflow_registry.py serves the printed command.
- ``docker_build``: printed here (no docker on PATH) and the very function ``modelport build``
  runs; tests/container/test_deploy_images.py builds with it on the real engine.
- ``docker_run``: tests/container/test_deploy_images.py runs the printed command (the engine
  there has no bridge network, so ``-p`` becomes ``--network host`` and ``PORT``).
- The generated files' own comments (``kubectl apply -f``, ``docker compose up``, ``docker
  build``) cannot run here (no cluster, no compose plugin): they are checked against the files
  beside them, which tests/deploy/test_deploy.py keeps equal to what modelport writes.
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from rich.console import Console
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelport import hints
from modelport.core.versions import add_version

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "deploy" / "golden"
HINT = re.compile(r"pip install '?modelport\[([A-Za-z0-9_,-]+)\]'?")
# a command being built: what only modelport.hints may do
COMMAND = re.compile(
    r"pip install |modelport (pin|serve) |docker (build|run) -|add --trust |kubectl apply"
)
# names a command's form (N is a placeholder), suggests nothing to run as it is
NOT_A_HINT = ("MODELPORT_METRICS_PORT works with `modelport serve --workers N`",)
# which test runs each hint (see the module's docstring)
RUN_BY = {
    "pip_extra": "tests/test_extras.py",
    "pip_package": "test_pip_hints_run_as_printed",
    "pip_source": "test_pip_hints_run_as_printed",
    "pin": "test_the_trust_and_pin_hints_run_as_printed_with_spaces_in_paths",
    "trust": "test_the_trust_and_pin_hints_run_as_printed_with_spaces_in_paths",
    "rerun_with_trust": "test_the_trust_and_pin_hints_run_as_printed_with_spaces_in_paths",
    "serve_trusted": "tests/e2e/test_mlflow_registry.py",
    "docker_build": "tests/container/test_deploy_images.py",
    "docker_run": "tests/container/test_deploy_images.py",
}


def _extras() -> set[str]:
    return set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )


def test_every_hint_is_in_the_catalog_and_run_somewhere() -> None:
    assert set(hints.CATALOG) == set(hints.__all__) - {"CATALOG"} == set(RUN_BY)
    for where in RUN_BY.values():
        if where.startswith("tests/"):
            assert (ROOT / where).is_file()
        else:
            assert callable(globals()[where])


def _strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_no_command_is_built_outside_the_hints_module() -> None:
    """settings.py's field descriptions are documentation (their extras are checked below)."""
    package = ROOT / "src" / "modelport"
    found = [
        f"{path.relative_to(package)}:{line}: {text[:80]!r}"
        for path in package.rglob("*.py")
        if path.name not in ("hints.py", "settings.py")
        for line, text in _strings(path)
        if COMMAND.search(text) and not text.startswith(NOT_A_HINT)
    ]
    assert not found, "build these with modelport.hints:\n" + "\n".join(found)


def test_every_extra_a_hint_names_exists() -> None:
    extras = _extras()
    named: dict[str, set[str]] = {}
    for path in (ROOT / "src" / "modelport").rglob("*.py"):
        for line, text in _strings(path):
            for match in HINT.finditer(text):
                named.setdefault(match.group(1), set()).add(f"{path.name}:{line}")
        for match in re.finditer(r"pip_extra\(['\"]([A-Za-z0-9_-]+)['\"]\)", path.read_text()):
            named.setdefault(match.group(1), set()).add(path.name)
    assert len(named) >= 8  # the runtimes', the examples', gRPC's, tracing's, ...
    missing = {extra: sorted(where) for extra, where in named.items() if extra not in extras}
    assert not missing, f"hints name extras pyproject.toml does not define: {missing}"


def test_every_extra_the_runtimes_hint_exists() -> None:
    """The hints built from ``runtimes.EXTRAS`` (a runtime or package not installed)."""
    from modelport.runtimes import EXTRAS

    assert set(EXTRAS.values()) <= _extras()


def _shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _line(text: str, start: str) -> str:
    """The printed command that begins with ``start``, to the end of its line."""
    lines = [line for line in text.splitlines() if start in line]
    assert lines, text
    return lines[0][lines[0].index(start) :].strip()


def test_the_trust_and_pin_hints_run_as_printed_with_spaces_in_paths(tmp_path: Path) -> None:
    """A model copied in by hand, never pinned, in a folder with a space, with a lock of its own
    (MODELPORT_PIN_FILE): ``predict`` prints the command run again with ``--trust`` and the
    ``modelport pin ... --lock ...`` command; both run as printed, by a shell."""
    x, y = load_iris(return_X_y=True)
    loose = tmp_path / "loose.pkl"
    loose.write_bytes(pickle.dumps(LogisticRegression(max_iter=500).fit(x, y)))
    repo = tmp_path / "my models"
    add_version(repo, "flowers", loose, None)
    (repo / "flowers" / "1" / "model.pkl.sha256").unlink()  # as if copied in by hand
    (tmp_path / "modelport.lock").unlink()  # and never pinned
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "MODELPORT_PIN_FILE": str(tmp_path / "pins here" / "my.lock"),
    }
    data = shlex.quote('{"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2}')
    asked = f"modelport predict 'my models' --data {data}"
    refused = _shell(asked, tmp_path, env)
    assert refused.returncode == 2, refused.stderr
    rerun = _line(refused.stderr, "run modelport predict").removeprefix("run ")
    assert rerun == f"{asked} --trust 'my models/flowers/1/model.pkl'"
    done = _shell(rerun, tmp_path, env)
    assert (done.returncode, '"prediction": 0' in done.stdout) == (0, True), done.stderr
    pin = _line(refused.stderr, "modelport pin")
    assert pin == f"modelport pin 'my models' --lock '{tmp_path}/pins here/my.lock'"
    assert _shell(pin, tmp_path, env).returncode == 0
    done = _shell(asked, tmp_path, env)
    assert done.returncode == 0, done.stderr


def test_pip_hints_run_as_printed() -> None:
    """``pip_package`` runs by this venv's pip, offline (``--dry-run --no-index``): what it
    installs is here. ``pip_source`` needs the build backend from an index, which this machine
    cannot reach: it is checked against the checkout it is run in (the source root)."""
    words = shlex.split(hints.pip_package("pillow"))
    assert words[:2] == ["pip", "install"]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", *words[2:]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert shlex.split(hints.pip_source()) == ["pip", "install", "-e", "."]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "modelport"
    assert "build-backend" in pyproject["build-system"]


def test_the_no_docker_hint_names_the_context_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.cli import deploy
    from modelport.cli.examples import train_example

    train_example("iris", tmp_path / "models")
    monkeypatch.setattr(deploy.shutil, "which", lambda _: None)
    monkeypatch.setattr(deploy, "write_target", lambda *args, **kwargs: [])
    console = Console(record=True, width=400)
    context = tmp_path / "my context"
    assert deploy.build_image(tmp_path / "models", "iris-api:1.0", context, console) is None
    printed = _line(console.export_text(), "docker build")
    assert shlex.split(printed) == hints.docker_build("iris-api:1.0", context)


def test_the_generated_files_comments_name_the_files_beside_them() -> None:
    """No cluster or compose plugin here: each comment's command is parsed and checked."""
    dockerfile = (GOLDEN / "docker" / "Dockerfile").read_text().splitlines()
    image = "iris-api:1.0"
    assert dockerfile[1] == "#   " + shlex.join(hints.docker_build(image, Path(".")))
    assert dockerfile[2] == "#   " + shlex.join(hints.docker_run(image, 8000))
    kubernetes = GOLDEN / "kubernetes" / "kubernetes.yaml"
    command = _line(kubernetes.read_text(), "kubectl apply")
    assert shlex.split(command) == ["kubectl", "apply", "-f", kubernetes.name]
    kinds = [d["kind"] for d in yaml.safe_load_all(kubernetes.read_text()) if d]
    assert {"Deployment", "Service"} <= set(kinds)
    compose = GOLDEN / "compose" / "compose.yaml"
    assert _line(compose.read_text(), "docker compose") == "docker compose up --build"
    services = yaml.safe_load(compose.read_text())["services"]
    assert any(service.get("build") == "." for service in services.values())
    from modelport.deploy import TARGETS, WITH_DOCKER

    assert "compose" in WITH_DOCKER  # compose's `build: .` gets the Dockerfile beside it
    assert ("Dockerfile", "Dockerfile") in TARGETS["docker"]
