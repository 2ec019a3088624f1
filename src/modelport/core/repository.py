"""The model repository on disk, Triton-style::

    models/
      iris/
        modelport.yaml          the model card (optional)
        1/
          model.joblib          the artifact
          model.joblib.sha256   its pinned hash, written by modelport
        2/ ...

:func:`scan` turns a repository folder, one model's folder, or a single model file into
:class:`ModelSource` descriptions; nothing is loaded here.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from modelport.errors import ConfigError
from modelport.model.card import CARD_FILE, ModelCard, read_card, write_card
from modelport.model.integrity import write_sha256
from modelport.runtimes import runtime_for_file, runtime_reads
from modelport.sources import is_registry_uri

__all__ = ["ModelSource", "add_folder_version", "add_version", "scan"]

PARITY_FILE = "parity.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IGNORED_SUFFIXES = (".sha256", ".md", ".txt", ".yaml", ".yml")
_PICKLED_WEIGHTS = ("pytorch_model.bin", "tf_model.h5")


@dataclass
class ModelSource:
    """One model as found on disk: its card and the artifact of each version.

    ``problems`` holds per-version findings (a version folder without an artifact, say) that make
    that version fail at load time without stopping the others.
    """

    name: str
    card: ModelCard
    folder: Path | None
    versions: dict[int, Path]
    problems: dict[int, str] = field(default_factory=dict)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ConfigError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (at most 128)"
        )
    return name


def _candidate(path: Path, card: ModelCard) -> bool:
    """Whether ``path`` may be a version's model file: not a hash, note or parity report, unless
    its content says it is a model (``.txt``, ``.json``) or the card's runtime reads its suffix."""
    if not path.is_file() or path.name.startswith(".") or path.name == PARITY_FILE:
        return False
    if not path.name.endswith(_IGNORED_SUFFIXES):
        return True
    if card.runtime and card.runtime != "auto" and runtime_reads(card.runtime, path):
        return True
    return runtime_for_file(path) is not None


def _artifact(folder: Path, card: ModelCard) -> Path:
    if card.artifact:
        path = folder / card.artifact
        if not path.is_file():
            raise ConfigError(f"{folder}: the card names artifact {card.artifact!r}, not found")
        return path
    candidates = sorted(p for p in folder.iterdir() if _candidate(p, card))
    known = [p for p in candidates if runtime_for_file(p) is not None]
    if not known and any(p.name in _PICKLED_WEIGHTS for p in candidates):
        raise ConfigError(
            f"{folder}: only pickled weights ({', '.join(_PICKLED_WEIGHTS)}); modelport reads "
            "model.safetensors: re-save with save_pretrained(path, safe_serialization=True)"
        )
    if card.runtime == "auto":
        return _auto_twin(folder, known)
    if card.runtime:
        matching = [p for p in candidates if runtime_reads(card.runtime, p)]
        known = matching or known or candidates
    else:  # a twin `modelport convert` wrote is served only with `runtime: auto`
        twins = [p for p in known if p.suffix == ".onnx" and p.with_name(PARITY_FILE).is_file()]
        known = [p for p in known if p not in twins] or known
    if len(known) == 1:
        return known[0]
    if not known:
        raise ConfigError(f"{folder}: no model file found (expected .joblib, .pkl or .skops)")
    names = ", ".join(p.name for p in known)
    raise ConfigError(
        f"{folder}: several model files ({names}); name one as `artifact` in the card"
    )


def parity_passed(artifact: Path) -> bool:
    """Whether ``modelport convert`` recorded a passed parity check for this twin."""
    report = artifact.with_name(PARITY_FILE)
    if not report.is_file():
        return False
    try:
        return bool(json.loads(report.read_text(encoding="utf-8")).get("passed"))
    except (json.JSONDecodeError, AttributeError):
        return False


def _auto_twin(folder: Path, known: list[Path]) -> Path:
    """``runtime: auto``: the ONNX twin when its parity check passed, else the original."""
    twins = [p for p in known if p.suffix == ".onnx" and parity_passed(p)]
    originals = [p for p in known if p.suffix != ".onnx"]
    choice = twins or originals
    if len(choice) != 1:
        raise ConfigError(f"{folder}: `runtime: auto` needs one model file and at most one twin")
    return choice[0]


def registry_source(
    uri: str, card: ModelCard | None = None, name: str | None = None
) -> ModelSource:
    """A model of an MLflow registry (``models:/NAME@ALIAS``), fetched into the local cache."""
    from modelport.sources.registry import open_model

    found = open_model(uri, card, name)
    return ModelSource(
        check_name(found.name), found.card, found.folder, found.versions, found.problems
    )


def _model_folder(folder: Path) -> ModelSource:
    card = read_card(folder / CARD_FILE)
    name = check_name(card.name or folder.name)
    if card.source is not None:  # a card naming a registry model: served from there
        source = registry_source(card.source, card, name)
        source.folder = folder
        return source
    versions: dict[int, Path] = {}
    problems: dict[int, str] = {}
    for child in sorted(folder.iterdir()):
        if not (child.is_dir() and child.name.isdigit() and int(child.name) > 0):
            continue
        version = int(child.name)
        try:
            versions[version] = _artifact(child, card)
        except ConfigError as exc:
            versions[version] = child
            problems[version] = exc.message
    if not versions:
        raise ConfigError(f"{folder}: no version folders (expected {folder}/1/ with a model file)")
    return ModelSource(name, card, folder, versions, problems)


def _is_model_folder(folder: Path) -> bool:
    return (folder / CARD_FILE).is_file() or any(
        c.is_dir() and c.name.isdigit() for c in folder.iterdir()
    )


def scan(path: Path) -> list[ModelSource]:
    """Describe the models at ``path``: a repository, one model's folder, or one model file."""
    if is_registry_uri(path):
        return [registry_source(str(path))]
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    if path.is_file():
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip("-.") or "model"
        card = read_card(path.with_name(CARD_FILE))
        return [ModelSource(card.name or name, card, None, {1: path})]
    if _is_model_folder(path):
        return [_model_folder(path)]
    sources = [
        _model_folder(child)
        for child in sorted(path.iterdir())
        if child.is_dir() and not child.name.startswith(".")
    ]
    if not sources:
        raise ConfigError(f"{path}: an empty model repository (no model folders inside)")
    return sources


def add_version(
    repository: Path, name: str, artifact: Path, card: ModelCard | None, version: int | None = None
) -> Path:
    """Copy ``artifact`` into ``repository/name/<version>/`` and pin its sha256; write ``card``
    unless it is ``None``.

    The version defaults to one above the highest present. Returns the copied artifact's path.
    """
    folder = repository / check_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    existing = [int(c.name) for c in folder.iterdir() if c.is_dir() and c.name.isdigit()]
    version = version or (max(existing, default=0) + 1)
    target_dir = folder / str(version)
    if target_dir.exists() and any(target_dir.iterdir()):
        raise ConfigError(f"{target_dir} already exists; choose another --version")
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"model{artifact.suffix.lower()}"
    shutil.copyfile(artifact, target)
    write_sha256(target)
    if card is not None:
        write_card(folder / CARD_FILE, card)
    return target


def add_folder_version(
    repository: Path, name: str, source: Path, card: ModelCard | None, version: int | None = None
) -> Path:
    """Copy a model that is a folder of files (a ``save_pretrained`` folder) into
    ``repository/name/<version>/``, pin every file in ``MANIFEST.sha256``, write ``card`` unless
    it is ``None``. Returns the version folder."""
    from modelport.model.manifest import copy_folder

    folder = repository / check_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    existing = [int(c.name) for c in folder.iterdir() if c.is_dir() and c.name.isdigit()]
    version = version or (max(existing, default=0) + 1)
    target = folder / str(version)
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists; choose another --version")
    copy_folder(source, target)
    if card is not None:
        write_card(folder / CARD_FILE, card)
    return target
