"""Registry sources frozen for an image: the image must not talk to the registry.

``modelport build models:/NAME@ALIAS`` and a repository whose cards name registry sources
(``source: models:/...``) are built from a staging copy of the repository, in a temporary folder,
where each registry source is replaced by the version it names now, imported as a pinned folder
model (:func:`modelport.core.freeze.import_registry_version`) under the model's name. The user's
repository and its lock are never written to: the staging copy has its own lock (the user's
pins, plus the frozen versions').
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelport.core.freeze import import_registry_version
from modelport.core.repository import is_model_dir
from modelport.errors import ConfigError, ModelportError
from modelport.model.card import CARD_FILE, ModelCard, read_card
from modelport.model.pins import LOCK_FILE, Pins
from modelport.sources import is_registry_uri

__all__ = ["Frozen", "check_place", "frozen", "registry_cards"]


@dataclass(frozen=True)
class Frozen:
    """What a build context is made of: ``repo`` (the user's, or the staging copy), the lock to
    copy (``None``: the repository's own pins) and, per registry source, the version frozen."""

    repo: Path
    lock: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)  # source -> "name vN"

    def notes(self) -> list[str]:
        return [
            f"froze {source} as {what} into the image (it will not ask the registry)"
            for source, what in self.versions.items()
        ]


def _card(folder: Path) -> ModelCard | None:
    """The card of ``folder`` when it names a registry source (an unreadable one: the build's
    scan says why)."""
    try:
        card = read_card(folder / CARD_FILE) if (folder / CARD_FILE).is_file() else None
    except ModelportError:
        return None
    return card if card is not None and card.source is not None else None


def registry_cards(repo: Path) -> dict[Path, ModelCard]:
    """The model folders of ``repo`` (a repository or one model's folder) whose card names a
    registry source; read without asking the registry."""
    if is_registry_uri(repo) or not repo.is_dir():
        return {}
    if is_model_dir(repo):
        folders = [repo]
    else:
        folders = [c for c in sorted(repo.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    return {folder: card for folder in folders if (card := _card(folder)) is not None}


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # the staging copy is only read, and removed after
    except OSError:
        shutil.copy2(source, target)


def _import(
    source: str, repo: Path, pins: Pins, name: str, card: ModelCard | None, trusted: list[Path]
) -> str:
    version = import_registry_version(source, repo, name, card=card, pins=pins, trusted=trusted)
    return f"{name} v{version.name}"


def _stage(repo: Path, staging: Path, cards: dict[Path, ModelCard], trusted: list[Path]) -> Frozen:
    """Copy ``repo`` without its registry models into ``staging``, then import them."""
    target = staging / (repo.name if repo.name and cards.get(repo) is None else "models")
    user = Pins.default(repo)
    pins = Pins(target, staging / LOCK_FILE, user.key)
    if user.lock.is_file():
        shutil.copyfile(user.lock, pins.lock)
    if repo in cards:  # one model's folder whose card names the source
        target.mkdir()
    else:
        skipped = {folder.name for folder in cards}
        shutil.copytree(
            repo,
            target,
            symlinks=True,
            copy_function=_link_or_copy,
            ignore=lambda where, names: skipped if Path(where) == repo else set(),
        )
    versions = {
        str(card.source): _import(str(card.source), target, pins, folder.name, card, trusted)
        for folder, card in cards.items()
    }
    return Frozen(target, pins.lock, versions)


@contextlib.contextmanager
def frozen(repo: Path, trusted: list[Path] | None = None) -> Iterator[Frozen]:
    """``repo`` with each registry source frozen at the version it names now (in a staging copy
    removed on exit); ``repo`` itself when it names none. A version that loads only by running
    code it carries is refused unless ``trusted`` (the build's ``--trust models:/NAME``) says
    so, as ``modelport serve`` refuses it."""
    trusted = trusted or []
    cards = registry_cards(repo)
    if not is_registry_uri(repo) and not cards:
        yield Frozen(repo)
        return
    with tempfile.TemporaryDirectory(prefix="modelport-frozen-") as tmp:
        staging = Path(tmp)
        if is_registry_uri(repo):
            target, pins = staging / "models", Pins(staging / "models", staging / LOCK_FILE)
            versions = {str(repo): _import(str(repo), target, pins, _name(repo), None, trusted)}
            yield Frozen(target, pins.lock, versions)
        else:
            yield _stage(repo, staging, cards, trusted)


def _name(uri: Path) -> str:
    from modelport.sources.registry import parse_uri

    return parse_uri(str(uri)).name


def check_place(repo: Path, out: Path, found: Frozen) -> None:
    """Refuse a build context whose ``models/`` would be the repository (or lie in it) when
    registry models are frozen into it."""
    if found.repo == repo or is_registry_uri(repo):
        return
    models, where = (out / "models").resolve(), repo.resolve()
    if models == where or where in models.parents or models in where.parents:
        raise ConfigError(
            f"{repo} names registry models, which the build freezes into {out}/models, where "
            "the repository itself lies: choose an --out folder that does not hold it"
        )
