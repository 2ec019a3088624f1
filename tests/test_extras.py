"""Every extra is complete: installed alone in a fresh virtual environment (modelport from this
tree, the extra's requirements and nothing else), its example trains and validates.

uv makes the environments: after the first run (which fills uv's cache from PyPI), each one
installs from the cache in seconds. PyTorch comes from the machine's CPU wheel where pip's
``find-links`` names one (``PIP_FIND_LINKS``), as ``pip install`` would take it.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]

#: extra -> the example it must be able to train (and then serve, as `validate` checks)
EXAMPLES = {
    "xgboost": ["iris", "--framework", "xgboost"],
    "lightgbm": ["iris", "--framework", "lightgbm"],
    "onnx": ["iris", "--framework", "onnx"],
    "torch": ["digits"],
    "transformers": ["sentiment", "--framework", "transformers"],
    "minilm": ["embeddings"],
}


def _uv() -> list[str]:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found:
        return [found]
    return [sys.executable, "-m", "uv"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    links = os.environ.get("PIP_FIND_LINKS")
    if links and "UV_FIND_LINKS" not in env:
        env["UV_FIND_LINKS"] = links
    return env


def _fresh_venv(folder: Path, extra: str) -> Path:
    env = _env()
    subprocess.run(
        [*_uv(), "venv", "-q", "--python", sys.executable, str(folder)], check=True, env=env
    )
    python = folder / "bin" / "python"
    install = [*_uv(), "pip", "install", "-q", "--python", str(python), f"{ROOT}[{extra}]"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "bin" / "modelport"


def _run_example(folder: Path, extra: str) -> str | None:
    """Make the extra's environment and run its example there: ``None``, or what failed."""
    modelport = _fresh_venv(folder / "venv", extra)
    repo = folder / "models"
    env = {**_env(), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for command in (
        ["examples", "train", *EXAMPLES[extra], "--repo", str(repo)],
        ["validate", str(repo)],
    ):
        done = subprocess.run(
            [str(modelport), *command],
            capture_output=True,
            text=True,
            env=env,
            cwd=folder,
            timeout=300,
        )
        if done.returncode != 0:
            return f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return None


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Every extra's run, two at a time (one per core; each example trains on one thread)."""
    root = tmp_path_factory.mktemp("extras")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = {extra: pool.submit(_run_example, root / extra, extra) for extra in EXAMPLES}
        return {extra: future.result() for extra, future in runs.items()}


@pytest.mark.parametrize("extra", list(EXAMPLES))
def test_an_extra_alone_runs_its_example(extra: str, outcomes: dict[str, str | None]) -> None:
    assert outcomes[extra] is None, outcomes[extra]
