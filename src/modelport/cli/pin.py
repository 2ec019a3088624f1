"""``modelport pin``: record the model files of a repository as trusted, as they are now.

Each version's artifact (a file, or the whole folder of a folder model) gets its sha256 in the
lock file (:mod:`modelport.model.pins`), its sidecar or manifest, and a signature when
``MODELPORT_PIN_KEY`` is set. A file whose pin or sidecar says it changed is not re-pinned
unless ``--force``: that change is what the pins exist to catch.
"""

# typer reads the annotations at run time and needs Optional[...] on Python 3.10:
# ruff: noqa: UP045

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from modelport.core.repository import ModelSource
    from modelport.model.pins import Pins

__all__ = ["PinRow", "pin_command", "pin_repository"]


@dataclass(frozen=True, slots=True)
class PinRow:
    """What ``pin`` did with one model version."""

    model: str
    version: int
    path: str
    status: str  # pinned, unchanged, refused
    detail: str = ""


def _changed(target: Path, folder: bool, digest: str) -> str | None:
    """Why the integrity record beside ``target`` says it changed, if it does."""
    from modelport.errors import UntrustedArtifact
    from modelport.model.integrity import pinned_sha256
    from modelport.model.manifest import verify_manifest

    if folder:
        try:
            verify_manifest(target)
        except UntrustedArtifact as exc:
            return exc.message
        return None
    side = pinned_sha256(target)
    return f"its sidecar pins another sha256 ({side})" if side not in (None, digest) else None


def _shown(path: Path, root: Path) -> str:
    """``path`` as a person reads it: relative to the repository it belongs to."""
    base = root.absolute() if root.is_dir() else root.absolute().parent
    try:
        return path.absolute().relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _pin_one(source: ModelSource, version: int, pins: Pins, force: bool) -> PinRow:
    from modelport.core.repository import is_folder_model
    from modelport.model.integrity import pin_artifact, sha256_of
    from modelport.model.manifest import pin_folder, tree_digest

    artifact = source.versions[version]
    if version in source.problems:
        return PinRow(source.name, version, artifact.name, "refused", source.problems[version])
    folder = is_folder_model(artifact, source.card)
    target = artifact.parent if folder and artifact.is_file() else artifact
    key = pins.relative(target) + ("/" if folder else "")
    shown = _shown(target, pins.root) + ("/" if folder else "")
    digest = tree_digest(target) if folder else sha256_of(target.read_bytes())
    previous = pins.read().get(key)
    if previous == digest and pins.key is None:
        return PinRow(source.name, version, shown, "unchanged")
    why = "it changed since it was pinned" if previous not in (None, digest) else None
    why = why or _changed(target, folder, digest)
    if why is not None and not force:
        return PinRow(source.name, version, shown, "refused", f"{why}; check it, then use --force")
    if folder:
        pin_folder(target, pins)
    else:
        pin_artifact(target, pins)
    return PinRow(source.name, version, shown, "pinned")


def pin_repository(
    path: Path, pins: Pins, *, model: str | None = None, force: bool = False
) -> list[PinRow]:
    """Pin every model version at ``path`` (only ``model``'s when given)."""
    from modelport.core.repository import scan
    from modelport.errors import ModelNotFound

    sources = [s for s in scan(path) if model is None or s.name == model]
    if not sources:
        raise ModelNotFound(f"no model {model!r} at {path}")
    return [_pin_one(s, v, pins, force) for s in sources for v in sorted(s.versions)]


def pin_command(
    path: Annotated[
        Optional[Path], typer.Argument(help="Model repository, one model's folder, or a file.")
    ] = None,
    model: Annotated[Optional[str], typer.Option(help="Pin only this model.")] = None,
    lock: Annotated[
        Optional[Path], typer.Option(help="Lock file (default: modelport.lock beside PATH).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Pin files even when their old pin says they changed.")
    ] = False,
) -> None:
    """Pin model files as trusted, as they are now: sha256 in the lock file (signed with
    MODELPORT_PIN_KEY when set). Pickles and folder models load only when pinned; a pinned file
    of any other format (ONNX, XGBoost, LightGBM) loads only as it was pinned."""
    from rich.console import Console
    from rich.table import Table

    from modelport.model.pins import Pins
    from modelport.settings import Settings

    overrides = {k: v for k, v in {"models": path, "pin_file": lock}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    pins = Pins.from_settings(settings)
    rows = pin_repository(settings.models, pins, model=model, force=force)
    table = Table(title=f"pins of {settings.models} in {pins.lock}")
    for column in ("model", "version", "path", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.model, str(row.version), row.path, row.status)
    console = Console(soft_wrap=True, highlight=False)
    console.print(table)
    for row in rows:
        if row.detail:
            console.print(f"{row.model} v{row.version} {row.status}: {row.detail}", markup=False)
    if any(row.status == "refused" for row in rows):
        raise typer.Exit(1)
