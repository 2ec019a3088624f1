"""Writing deploy files and Docker build contexts for a model repository."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelport.core.repository import ModelSource, scan, version_of
from modelport.deploy import TARGETS, WITH_DOCKER, DeploySpec, default_name, render_target
from modelport.errors import ConfigError
from modelport.model.card import CARD_FILE
from modelport.model.integrity import pinned_sha256, sidecar
from modelport.model.pins import LOCK_FILE, Pins
from modelport.runtimes import EXTRAS, runtime_for_file

__all__ = ["spec_for", "write_target"]


def _digest(path: Path) -> str:
    return pinned_sha256(path) or hashlib.sha256(path.read_bytes()).hexdigest()


def _extras(sources: list[ModelSource]) -> list[str]:
    needed = set()
    for source in sources:
        for artifact in source.versions.values():
            runtime = source.card.runtime or runtime_for_file(artifact)
            if runtime in EXTRAS:
                needed.add(EXTRAS[runtime])
    return sorted(needed)


def spec_for(
    repo: Path, name: str | None = None, image: str | None = None, **options: Any
) -> DeploySpec:
    """The deploy spec of the models at ``repo``, with the sha256 of each default version."""
    sources = scan(repo)
    models = {s.name: _digest(s.versions[max(s.versions)]) for s in sources if s.versions}
    label = default_name(name or (sources[0].name if len(sources) == 1 else repo.resolve().name))
    return DeploySpec(
        name=label,
        image=image or f"{label}:latest",
        models=models,
        extras=_extras(sources),
        **options,
    )


def _copy_models(repo: Path, target: Path) -> None:
    """The repository as ``models/`` in a build context (a single file or folder becomes one)."""
    if target.exists():
        shutil.rmtree(target)
    if (
        repo.is_dir()
        and not (repo / CARD_FILE).is_file()
        and not any(version_of(c) for c in repo.iterdir())
    ):
        shutil.copytree(repo, target, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        return
    (source,) = scan(repo)
    folder = target / source.name
    if repo.is_dir():
        shutil.copytree(repo, folder, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        return
    (folder / "1").mkdir(parents=True)
    shutil.copyfile(repo, folder / "1" / repo.name)
    if sidecar(repo).is_file():
        shutil.copyfile(sidecar(repo), folder / "1" / sidecar(repo).name)
    if (repo.parent / CARD_FILE).is_file():
        shutil.copyfile(repo.parent / CARD_FILE, folder / CARD_FILE)


def _copy_pins(repo: Path, target: Path) -> None:
    """The repository's trusted pins as they are (never re-pinned here: that would vouch for
    whatever the folder holds now); without any, an empty lock, and pickles are refused."""
    lock = Pins.default(repo).lock
    if lock.is_file():
        shutil.copyfile(lock, target)
    else:
        target.write_text(f"# no trusted pins: run `{Pins.default(repo).command()}`\n")


def _source_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / "modelport").is_dir():
        raise ConfigError(
            "modelport's source is not next to this installation, so its wheel cannot be "
            "built into the image; install modelport from a source checkout (pip install -e .)"
        )
    return root


def _wheel(dest: Path) -> None:
    """A wheel of this modelport in ``dest``, so the image needs no package index for it."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            tmp,
            str(_source_root()),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"building modelport's wheel failed: {done.stderr.strip()[-500:]}")
        for wheel in Path(tmp).glob("modelport-*.whl"):
            shutil.copyfile(wheel, dest / wheel.name)


def write_target(target: str, repo: Path, out: Path, spec: DeploySpec) -> list[Path]:
    """Write ``target``'s files (and, where a Dockerfile goes, ``models/`` and ``wheels/``)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, content in render_target(target, spec).items():
        path = out / file_name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    if target == "docker" or target in WITH_DOCKER:
        _copy_models(repo, out / "models")
        _copy_pins(repo, out / LOCK_FILE)
        _wheel(out / "wheels")
        written += [out / "models", out / LOCK_FILE, out / "wheels"]
    return written
