"""Adding a version to a model repository: the next version folder, written atomically (staged
beside it, then renamed), its files pinned; never over a version that exists."""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelport.core.repository import check_name, version_of
from modelport.errors import ConfigError
from modelport.model.card import CARD_FILE, ModelCard, read_card, write_card
from modelport.model.integrity import pin_artifact
from modelport.model.pins import Pins

__all__ = ["add_folder_version", "add_version"]


def _pins(repository: Path, pins: Pins | None) -> Pins:
    """The given pins, else those the settings name for ``repository``."""
    return pins if pins is not None else Pins.default(repository)


def _next_version(folder: Path, version: int | None) -> Path:
    existing = [v for v in map(version_of, folder.iterdir()) if v is not None]
    target = folder / str(version or (max(existing, default=0) + 1))
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists; choose another --version")
    return target


@contextmanager
def _staged(repository: Path, name: str, version: int | None) -> Iterator[tuple[Path, Path]]:
    """A temporary folder inside the model's folder and the version folder it becomes: the
    version appears whole (renamed) or not at all; so does a model folder made for it."""
    folder = repository / check_name(name)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the version from a server run as another user
    try:
        yield staging, _next_version(folder, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise


def _same_as_latest(folder: Path, artifact: Path, card: ModelCard | None) -> Path | None:
    """The highest version's file when it has the very bytes of ``artifact`` under ``card``."""
    versions = sorted((v for v in map(version_of, folder.glob("*")) if v is not None), reverse=True)
    if not versions or (card is not None and read_card(folder / CARD_FILE) != card):
        return None
    latest = folder / str(versions[0]) / f"model{artifact.suffix.lower()}"
    same = latest.is_file() and filecmp.cmp(latest, artifact, shallow=False)
    return latest if same else None


def add_version(
    repository: Path,
    name: str,
    artifact: Path,
    card: ModelCard | None,
    version: int | None = None,
    pins: Pins | None = None,
    *,
    reuse: bool = False,
) -> Path:
    """Copy ``artifact`` into ``repository/name/<version>/`` and pin its sha256 as trusted
    (sidecar and lock, :mod:`modelport.model.pins`); write ``card`` unless it is ``None``.

    The version defaults to one above the highest present; it appears whole or not at all. A file
    that already is that version's (``--version`` names its folder) is pinned where it is. Returns
    the artifact's path in the repository. With ``reuse``, an artifact identical to the highest
    version's, under the same card, is that version (a deterministic example trained again).
    """
    folder = repository / check_name(name)
    if reuse and version is None and (same := _same_as_latest(folder, artifact, card)):
        return same
    if version is not None and artifact.resolve().parent == (folder / str(version)).resolve():
        pin_artifact(artifact, _pins(repository, pins))
        if card is not None:
            write_card(folder / CARD_FILE, card)
        return artifact
    with _staged(repository, name, version) as (staging, target_dir):
        staged = staging / f"model{artifact.suffix.lower()}"
        shutil.copyfile(artifact, staged)
        staging.replace(target_dir)
        if card is not None:
            write_card(folder / CARD_FILE, card)
    target = target_dir / staged.name
    pin_artifact(target, _pins(repository, pins))  # pinned where it lies, once it is whole
    return target


def add_folder_version(
    repository: Path,
    name: str,
    source: Path,
    card: ModelCard | None,
    version: int | None = None,
    pins: Pins | None = None,
    leave_out: frozenset[str] = frozenset(),
) -> Path:
    """Copy a model that is a folder of files (a ``save_pretrained`` folder; those named in
    ``leave_out`` left out) into ``repository/name/<version>/``, pin every file in
    ``MANIFEST.sha256``, write ``card`` unless it is ``None``; the folder is pinned as trusted.
    The version appears whole or not at all. Returns the version folder."""
    from modelport.model.manifest import copy_folder, pin_folder

    with _staged(repository, name, version) as (staging, target):
        copy_folder(source, staging, leave_out=leave_out)
        staging.replace(target)
        pin_folder(target, _pins(repository, pins))  # pinned where it lies, once it is whole
        if card is not None:
            write_card(repository / name / CARD_FILE, card)
    return target
