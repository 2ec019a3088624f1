"""The model repository on disk, Triton-style::

    models/
      iris/
        modelport.yaml          the model card (optional)
        1/
          model.joblib          the artifact
          model.joblib.sha256   its pinned hash, written by modelport
        2/ ...

:func:`scan` turns a repository folder, one model's folder, or a single model file into
:class:`ModelSource` descriptions; nothing is loaded here. Nothing outside the scanned folder is
read: a model folder, version folder or file that is a link to outside it, or a card's
``artifact: ../..``, makes that model or version fail with the reason (the others serve). So
does a model folder that cannot be read as a model (a card that does not parse or validate, an
invalid name, no version folder): that model is listed with every version failed and the reason
in :attr:`ModelSource.error`; the others load and serve.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from modelport.core.validation import version_number
from modelport.errors import ConfigError, ModelportError
from modelport.model.card import CARD_FILE, ModelCard, read_card
from modelport.runtimes import runtime_for_file, runtime_reads
from modelport.sources import is_registry_uri

__all__ = [
    "ModelSource",
    "is_folder_model",
    "is_model_dir",
    "scan",
    "served_runtime",
    "version_of",
]

PARITY_FILE = "parity.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IGNORED_SUFFIXES = (".sha256", ".md", ".txt", ".yaml", ".yml")
_PICKLED_WEIGHTS = ("pytorch_model.bin", "tf_model.h5")


def version_of(folder: Path) -> int | None:
    """The version a folder holds: a positive number of ASCII digits as its name, else None."""
    number = version_number(folder.name)
    return number if number is not None and folder.is_dir() else None


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
    root: Path | None = None  # the path scanned: the repository (or the one model, or file)
    error: ModelportError | None = None  # why the whole model fails (its card, its name)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ConfigError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (at most 128)"
        )
    return name


def _outside(path: Path, root: Path | None) -> bool:
    """Whether ``path`` resolves (links followed) to outside ``root``."""
    if root is None:
        return False
    resolved = path.resolve()
    return resolved != root and root not in resolved.parents


def _escape(folder: Path, root: Path | None) -> str | None:
    """The first entry of ``folder`` (itself included) that leads outside ``root``, if any."""
    if root is None:
        return None
    if _outside(folder, root):
        return "the folder"
    for top, dirs, files in os.walk(folder):  # links to folders are listed, not followed
        for name in (*dirs, *files):
            if _outside(Path(top, name), root):
                return Path(top, name).relative_to(folder).as_posix()
    return None


def _refused(label: str, entry: str) -> str:
    return (
        f"{label}: {entry} is a link to outside the model repository; modelport reads no file "
        "outside it (copy the files in instead)"
    )


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


def _artifact(folder: Path, card: ModelCard, root: Path | None) -> Path:
    escape = _escape(folder, root)
    if escape is not None:
        raise ConfigError(_refused(f"{folder.parent.name}/{folder.name}", escape))
    if card.artifact:
        path = folder / card.artifact
        if _outside(path, root if root is not None else folder.resolve()):
            raise ConfigError(
                f"{folder.name}: the card's artifact {card.artifact!r} lies outside the model "
                "repository; modelport reads no file outside it"
            )
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


def _model_folder(folder: Path, root: Path | None) -> ModelSource:
    for entry, what in ((folder, "the model folder"), (folder / CARD_FILE, CARD_FILE)):
        if _outside(entry, root):  # nothing of it is read: it fails, the others serve
            problem = _refused(folder.name, what)
            name = check_name(folder.name)
            return ModelSource(name, ModelCard(), folder, {1: folder}, {1: problem})
    card = read_card(folder / CARD_FILE)
    name = check_name(card.name or folder.name)
    if card.source is not None:  # a card naming a registry model: served from there
        source = registry_source(card.source, card, name)
        source.folder = folder
        return source
    versions: dict[int, Path] = {}
    problems: dict[int, str] = {}
    for child in sorted(folder.iterdir()):
        version = version_of(child)
        if version is None:
            continue
        try:
            versions[version] = _artifact(child, card, root)
        except ConfigError as exc:
            versions[version] = child
            problems[version] = exc.message
    if not versions:
        raise ConfigError(f"{folder}: no version folders (expected {folder}/1/ with a model file)")
    return ModelSource(name, card, folder, versions, problems)


def _broken(folder: Path, error: ModelportError) -> ModelSource:
    """A model folder that cannot be read as a model: each of its versions fails with
    ``error``, so it is listed with the reason while the other models serve."""
    name = folder.name if NAME_RE.match(folder.name) else _safe_name(folder.name)
    try:
        found = [(version_of(child), child) for child in sorted(folder.iterdir())]
    except OSError:
        found = []
    versions = {v: child for v, child in found if v is not None} or {1: folder}
    problems = dict.fromkeys(versions, error.message)
    return ModelSource(name, ModelCard(), folder, versions, problems, error=error)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-.")[:128] or "model"


def _read_model(folder: Path, root: Path | None) -> ModelSource:
    """:func:`_model_folder`, or when the folder cannot be read as a model, a failed model."""
    try:
        return _model_folder(folder, root)
    except ModelportError as exc:
        return _broken(folder, exc)
    except OSError as exc:
        return _broken(folder, ConfigError(f"{folder}: cannot be read: {exc.strerror or exc}"))


def is_model_dir(folder: Path) -> bool:
    """Whether ``folder`` is one model's folder (a card, or version folders), not a repository
    of model folders."""
    return (folder / CARD_FILE).is_file() or any(version_of(c) for c in folder.iterdir())


def scan(path: Path) -> list[ModelSource]:
    """Describe the models at ``path``: a repository, one model's folder, or one model file."""
    if is_registry_uri(path):
        return [registry_source(str(path))]
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    if path.is_file():
        name = _safe_name(path.stem)
        card = read_card(path.with_name(CARD_FILE))
        return [ModelSource(card.name or name, card, None, {1: path}, root=path)]
    root = path.resolve()
    if is_model_dir(path):
        sources = [_read_model(path, root)]
    else:
        sources = [
            _read_model(child, root)
            for child in sorted(path.iterdir())
            if child.is_dir() and not child.name.startswith(".")
        ]
    if not sources:
        raise ConfigError(f"{path}: an empty model repository (no model folders inside)")
    sources = _own_names(sources)
    for source in sources:
        source.root = path
    return sources


def _own_names(sources: list[ModelSource]) -> list[ModelSource]:
    """Models whose cards claim one name fail alone, each listed under its folder's name (made
    unique when a served model has it: a served model's name never changes), while the others
    serve."""
    claims = Counter(source.name for source in sources)
    kept: list[ModelSource] = []
    for source in sources:
        if claims[source.name] > 1 and source.folder is not None:
            folders = sorted(
                f"{s.folder.name}/" for s in sources if s.name == source.name and s.folder
            )
            source = _broken(source.folder, ConfigError(
                f"{', '.join(folders)} all name their model {source.name!r}: give each its own "
                "name (the card's `name`, or the folder's)"
            ))  # fmt: skip
        kept.append(source)
    taken = {source.name for source in kept if source.error is None}  # served names stay
    for source in (s for s in kept if s.error is not None):
        base, n = source.name, 2
        while source.name in taken:
            source.name, n = f"{base}-{n}", n + 1
        taken.add(source.name)
    return kept


def served_runtime(artifact: Path, card: ModelCard) -> str | None:
    """The runtime that serves ``artifact``: the card's, else (none, or ``auto``, which chose the
    artifact already) the one its file type names."""
    return card.runtime if card.runtime not in (None, "auto") else runtime_for_file(artifact)


def is_folder_model(artifact: Path, card: ModelCard) -> bool:
    """Whether the model is its version folder rather than one file (a transformers folder)."""
    return artifact.is_dir() or served_runtime(artifact, card) == "transformers"
