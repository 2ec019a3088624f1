"""Writing deploy files and Docker build contexts for a model repository.

The repository is never written to. When it lies inside the output folder (``deploy render
models --out .`` in a project), the Dockerfile copies it from where it is; otherwise its files
are copied into ``models/`` of the output folder. Every write goes through
:func:`modelport.deploy.files.write_files`, which refuses to replace what modelport did not write.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelport.core.repository import ModelSource, is_model_dir, scan
from modelport.deploy import TARGETS, WITH_DOCKER, DeploySpec, default_name, render_target
from modelport.deploy.files import Content, check_out, write_files
from modelport.deploy.needs import needs
from modelport.errors import ConfigError
from modelport.hints import pip_source
from modelport.model.card import CARD_FILE
from modelport.model.integrity import pinned_sha256, sidecar
from modelport.model.pins import LOCK_FILE, Pins

__all__ = ["needs_notes", "spec_for", "write_target"]

# folder names that say nothing about the service: the project folder above names it instead
_GENERIC = {"models", "model", "repository", "repo"}


def _digest(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(path.name.encode()).hexdigest()
    return pinned_sha256(path) or hashlib.sha256(path.read_bytes()).hexdigest()


def _service_name(repo: Path, sources: list[ModelSource]) -> str:
    """The single model's name, else the repository folder's (the project's for ``models``)."""
    if len(sources) == 1:
        return default_name(sources[0].name)
    folder = repo.resolve()
    while folder.name.lower() in _GENERIC and folder.parent != folder:
        folder = folder.parent
    label = default_name(folder.name)
    return "modelport" if label in _GENERIC else label


def spec_for(
    repo: Path,
    name: str | None = None,
    image: str | None = None,
    *,
    origin: Path | None = None,
    **options: Any,
) -> DeploySpec:
    """The deploy spec of the models at ``repo``, with the sha256 of each default version and
    what their files need installed; the service is named after ``origin`` (default ``repo``),
    the repository a staging copy was made of."""
    sources = scan(repo)
    for source in sources:
        if source.error is not None:  # an image is built of models that read, or not at all
            raise source.error
    models = {s.name: _digest(s.versions[max(s.versions)]) for s in sources if s.versions}
    label = default_name(name) if name else _service_name(origin or repo, sources)
    found = needs(sources)
    return DeploySpec(
        name=label,
        image=image or f"{label}:latest",
        models=models,
        extras=sorted(found.extras),
        packages=sorted(found.packages.values()),
        **options,
    )


def needs_notes(repo: Path) -> list[str]:
    """Warnings about modules the models' files name that no installed package provides."""
    found = needs(scan(repo))
    return [
        f"{', '.join(sorted(models))} names the module {module!r}, which no installed package "
        "provides: the image's check will fail unless it is importable there"
        for module, models in sorted(found.unknown.items())
    ]


def _is_repository(repo: Path) -> bool:
    return repo.is_dir() and not is_model_dir(repo)


def _files_under(folder: Path, prefix: str) -> dict[str, Content]:
    """Every file below ``folder`` (hidden ones and caches left out) under ``prefix``."""
    found: dict[str, Content] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(p.startswith(".") or p == "__pycache__" for p in rel.parts) or not path.is_file():
            continue
        found[f"{prefix}/{rel.as_posix()}"] = path
    return found


def _models(repo: Path, out: Path) -> tuple[dict[str, str], dict[str, Content]]:
    """Where the Dockerfile finds the models, and the files to copy (none when in place)."""
    repo, out = repo.resolve(), out.resolve()
    if repo.is_dir() and out in repo.parents:
        rel = repo.relative_to(out).as_posix()
        if _is_repository(repo):
            return {"models_path": rel, "models_target": "/models"}, {}
        (source,) = scan(repo)
        return {"models_path": rel, "models_target": f"/models/{source.name}"}, {}
    place = {"models_path": "models", "models_target": "/models"}
    if _is_repository(repo):
        return place, _files_under(repo, "models")
    (source,) = scan(repo)
    if repo.is_dir():
        return place, _files_under(repo, f"models/{source.name}")
    files: dict[str, Content] = {f"models/{source.name}/1/{repo.name}": repo}
    if sidecar(repo).is_file():
        files[f"models/{source.name}/1/{sidecar(repo).name}"] = sidecar(repo)
    if (repo.parent / CARD_FILE).is_file():
        files[f"models/{source.name}/{CARD_FILE}"] = repo.parent / CARD_FILE
    return place, files


def _pins(repo: Path, out: Path, lock: Path | None) -> dict[str, Content]:
    """The repository's trusted pins as they are (``lock``, default the repository's), as
    ``modelport.lock`` (never re-pinned here: that would vouch for whatever the folder holds
    now); without any, an empty lock, and pickles are refused. A lock already where the build
    context needs it is used in place."""
    pins = Pins.default(repo) if lock is None else Pins(repo, lock)
    if pins.lock.resolve() == (out / LOCK_FILE).resolve() and pins.lock.is_file():
        return {}
    if pins.lock.is_file():
        return {LOCK_FILE: pins.lock}
    return {LOCK_FILE: f"# no trusted pins: run `{pins.command()}`\n".encode()}


def _source_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / "modelport").is_dir():
        raise ConfigError(
            "modelport's source is not next to this installation, so its wheel cannot be "
            f"built into the image; install modelport from a source checkout ({pip_source()})"
        )
    return root


@functools.cache
def _wheel() -> tuple[str, bytes]:
    """A wheel of this modelport (name, bytes), so the image needs no package index for it;
    built once a process."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp]
        done = subprocess.run(
            [*command, str(_source_root())], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ConfigError(f"building modelport's wheel failed: {done.stderr.strip()[-500:]}")
        (wheel,) = Path(tmp).glob("modelport-*.whl")
        return wheel.name, wheel.read_bytes()


def _check_kserve(spec: DeploySpec) -> None:
    if spec.name not in spec.models:
        raise ConfigError(
            f"KServe sends /v2/models/<InferenceService name>/infer to the runtime, so the "
            f"service must be named after the model it serves: give --name one of "
            f"{', '.join(spec.models)} (a model name that is not a DNS label needs renaming)"
        )


def write_target(
    target: str,
    repo: Path,
    out: Path,
    spec: DeploySpec,
    *,
    force: bool = False,
    lock: Path | None = None,
) -> list[Path]:
    """Write ``target``'s files (and, where a Dockerfile goes, the models and ``wheels/``);
    ``lock``: the trusted pins to copy (default: the repository's).

    Refuses, having written nothing, an ``out`` inside the repository and an ``out`` holding
    files modelport did not write that it would replace, unless ``force``."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    check_out(out, repo)
    if target == "kserve":
        _check_kserve(spec)
    docker = target == "docker" or target in WITH_DOCKER
    files: dict[str, Content] = {}
    owned: list[str] = []
    if docker:
        place, files = _models(repo, out)
        spec = spec.model_copy(update=place)
        owned = ["wheels", *(["models"] if files else [])]
    rendered = render_target(target, spec)
    files.update({name: text.encode("utf-8") for name, text in rendered.items()})
    if docker:
        files.update(_pins(repo, out, lock))
        wheel, content = _wheel()
        files[f"wheels/{wheel}"] = content
    return write_files(out, files, force=force, owned_folders=owned)
