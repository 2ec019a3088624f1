"""MLflow registry models as pinned version folders in a local cache.

::

    <registry_cache>/<NAME>/
      aliases.json          the version each alias named when last asked (to start offline)
      <VERSION>/            the version's MLflow files, as downloaded
        MANIFEST.sha256     the sha256 of every file, taken at first download
        modelport.yaml      the card generated from MLmodel (runtime, file, signature)
    modelport.lock          the tree sha256 of each folder model (transformers), taken at first
                            download: the trusted pin its runtime asks for

A version is downloaded once; every later use checks it against its manifest (a file that changed
is refused). MLflow keeps no checksum of a version's files (its artifact listing has sizes
only), so the sha256 taken at first download is the pin.
What loads only by running code the model carries (a pickle, a ``torch.export`` program, a
``python_function``-only model, skops types skops does not trust) loads only with
``--trust models:/NAME``: the registry accepts whatever anyone logged. When the registry is
unreachable, the cache answers: the alias's last known version, or the pinned version asked for.
Writers hold ``<NAME>/.lock`` (several workers share the cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelport.errors import ConfigError, ModelportError, UntrustedArtifact
from modelport.hints import serve_trusted, trust
from modelport.model.card import CARD_FILE, ModelCard, read_card, write_card
from modelport.model.integrity import PICKLE_SUFFIXES, is_trusted, write_sha256
from modelport.model.manifest import MANIFEST, tree_digest, verify_manifest, write_manifest
from modelport.model.pins import LOCK_FILE, Pins
from modelport.settings import Settings
from modelport.sources import is_registry_uri
from modelport.sources.mlmodel import PYFUNC, flavors_of, read_mlmodel

__all__ = [
    "FoundModel",
    "RegistryRef",
    "cache_root",
    "fetch_version",
    "open_model",
    "parse_uri",
    "registry_pins",
    "registry_refusals",
    "resolve",
    "trusted_paths",
    "untrusted_refusal",
    "version_entry",
]

log = logging.getLogger("modelport.sources.registry")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>\d+))/?$")


@dataclass(frozen=True, slots=True)
class RegistryRef:
    name: str
    alias: str | None = None
    version: int | None = None

    @property
    def uri(self) -> str:
        return (
            f"models:/{self.name}@{self.alias}"
            if self.alias
            else f"models:/{self.name}/{self.version}"
        )


def parse_uri(text: str) -> RegistryRef:
    match = _URI.match(str(text))
    if match is None:
        raise ConfigError(
            f"{text!r}: a registry model is models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    version = match["version"]
    return RegistryRef(match["name"], match["alias"], int(version) if version else None)


def cache_root() -> Path:
    """``MODELPORT_REGISTRY_CACHE`` (default ``~/.cache/modelport/registry``)."""
    return Settings().registry_cache.expanduser()


def registry_pins() -> Pins:
    """The cache's own pins: folder models pinned at first download."""
    root = cache_root()
    return Pins(root, root / LOCK_FILE)


def trusted_paths(trust: Iterable[Path]) -> list[Path]:
    """``--trust`` entries with each ``models:/NAME`` replaced by that model's cache folder."""
    return [
        cache_root() / str(item)[len("models:/") :].split("@")[0].split("/")[0]
        if is_registry_uri(item)
        else item
        for item in trust
    ]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _aliases(folder: Path) -> dict[str, int]:
    try:
        return {
            str(k): int(v) for k, v in json.loads((folder / "aliases.json").read_text()).items()
        }
    except (OSError, ValueError, AttributeError):
        return {}


def resolve(ref: RegistryRef) -> int:
    """Ask the registry which version ``ref`` names; remember an alias's answer in the cache."""
    from modelport.sources.mlflow_client import resolve as ask

    version = ask(ref.name, ref.alias, ref.version)
    if ref.alias is not None:
        folder = cache_root() / ref.name
        with _locked(folder):
            known = _aliases(folder)
            if known.get(ref.alias) != version:
                known[ref.alias] = version
                temporary = folder / ".aliases.json.tmp"
                temporary.write_text(json.dumps(known), encoding="utf-8")
                temporary.replace(folder / "aliases.json")
    return version


def _pin(folder: Path, source: str) -> None:
    """Generate the card and pin every file (a pickle also gets its own sidecar)."""
    found = read_mlmodel(folder, source)
    if found.runtime == "transformers":  # MLflow keeps the tokenizer beside the weights
        tokenizer = folder / "components" / "tokenizer"
        if tokenizer.is_dir():
            shutil.copytree(tokenizer, found.path, dirs_exist_ok=True)
    if found.path.suffix.lower() in PICKLE_SUFFIXES and found.path.is_file():
        write_sha256(found.path)
    write_card(folder / CARD_FILE, found.card)
    write_manifest(folder)


def _pin_folder_model(staged: Path, target: Path) -> None:
    """A folder model's tree sha256, as first downloaded, in the cache's lock, keyed by where
    it will lie: written before the version appears there (a worker that finds it finds it
    pinned), under the cache-wide lock (two models fetched at once both keep their line)."""
    artifact = str(read_card(staged / CARD_FILE).artifact)
    if (staged / artifact).is_dir():
        pins = registry_pins()
        with _locked(cache_root()):
            pins.write({pins.relative(target / artifact) + "/": tree_digest(staged / artifact)})


def fetch_version(name: str, version: int) -> Path:
    """The cached folder of ``name`` v``version``, downloaded and pinned first if need be."""
    from modelport.sources.mlflow_client import download

    model = cache_root() / name
    target = model / str(version)
    if (target / MANIFEST).is_file():
        return target
    with _locked(model):
        if (target / MANIFEST).is_file():  # another worker fetched it meanwhile
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=model))
        try:
            download(name, version, staging)
            _pin(staging, f"models:/{name}/{version}")
            _pin_folder_model(staging, target)
            if target.exists():
                shutil.rmtree(target)  # an unpinned leftover of an interrupted download
            staging.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("downloaded %s v%d into %s (sha256 pinned)", name, version, target)
    return target


def version_entry(folder: Path, card: ModelCard | None = None) -> tuple[Path, ModelCard]:
    """A cached version's file to load and its card; refused when a file changed."""
    if not verify_manifest(folder):
        raise ConfigError(f"{folder}: no {MANIFEST}; it was not downloaded by modelport")
    generated = read_card(folder / CARD_FILE)
    if card is not None:  # the repository's card, completed by the generated one
        found = read_mlmodel(folder, card.source or str(generated.source), card)
        return found.path, found.card
    return folder / str(generated.artifact), generated


@dataclass
class FoundModel:
    """A registry model at start: the version to serve, from the registry or the cache."""

    name: str
    ref: RegistryRef
    card: ModelCard
    folder: Path
    versions: dict[int, Path]
    problems: dict[int, str] = field(default_factory=dict)
    offline: str | None = None  # why the cache answered instead of the registry


def _cached_version(ref: RegistryRef, why: str) -> int:
    folder = cache_root() / ref.name
    version = _aliases(folder).get(ref.alias) if ref.alias else ref.version
    if version is None or not (folder / str(version) / MANIFEST).is_file():
        raise ConfigError(f"{why}, and {ref.uri} is not in the cache {folder}: nothing to serve")
    log.warning("%s: serving %s v%d from the cache %s", why, ref.uri, version, folder)
    return version


def open_model(uri: str, card: ModelCard | None = None, name: str | None = None) -> FoundModel:
    """The version ``uri`` names now, fetched into the cache (the cache alone when the registry
    does not answer)."""
    from modelport.sources.mlflow_client import RegistryUnavailable

    ref = parse_uri(uri)
    offline = None
    try:
        version = resolve(ref)
        folder = fetch_version(ref.name, version)
    except RegistryUnavailable as exc:
        offline = exc.message
        version = _cached_version(ref, exc.message)
        folder = cache_root() / ref.name / str(version)
    base = card.model_copy(update={"source": uri}) if card is not None else None
    problems: dict[int, str] = {}
    try:
        artifact, version_card = version_entry(folder, base)
    except ModelportError as exc:
        artifact, version_card, problems[version] = folder, base or ModelCard(), exc.message
    version_card = version_card.model_copy(update={"source": uri})
    return FoundModel(
        name or ref.name,
        ref,
        version_card,
        cache_root() / ref.name,
        {version: artifact},
        problems,
        offline,
    )


def _version_folder(artifact: Path) -> Path:
    for folder in (artifact, *list(artifact.parents)[:3]):
        if (folder / "MLmodel").is_file():
            return folder
    return artifact.parent


def _skops_types(path: Path) -> list[str]:
    try:
        from skops.io import get_untrusted_types
    except ImportError:
        return []  # the sklearn runtime says which extra is missing
    try:
        return list(get_untrusted_types(file=path))
    except Exception:  # not a readable skops file: the runtime says why
        return []


def _code_reason(card: ModelCard, artifact: Path) -> str | None:
    """Why loading this registry version runs code the model carries, if it does."""
    if card.runtime == PYFUNC:
        if "pytorch" in flavors_of(_version_folder(artifact)):
            return (
                "it is a pickled PyTorch module (model.pth), which only MLflow's loader reads, "
                "and unpickling runs any code it carries"
            )
        return (
            "it has only the MLflow python_function flavor, whose loader runs the model's own "
            "Python code"
        )
    suffix = artifact.suffix.lower()
    if suffix == ".pt2":
        return f"{artifact.name} is a torch.export program, and torch.export.load unpickles it"
    if suffix in PICKLE_SUFFIXES:
        return f"{artifact.name} is a pickle, and unpickling runs any code it carries"
    if suffix == ".skops" and (types := _skops_types(artifact)):
        return f"{artifact.name} holds types skops does not trust by default: {', '.join(types)}"
    return None


def untrusted_refusal(
    card: ModelCard, artifact: Path, served: str | None = None
) -> UntrustedArtifact | None:
    """The refusal of a registry version (``card.source``) that loads only by running code it
    carries, with the exact ``--trust`` command; ``None`` when it loads safely."""
    if card.source is None or not is_registry_uri(card.source):
        return None
    reason = _code_reason(card, artifact)
    if reason is None:
        return None
    name = parse_uri(card.source).name
    command = serve_trusted(served, name) if served is not None else trust(f"models:/{name}")
    return UntrustedArtifact(
        f"refusing to serve {card.source}: {reason}; modelport runs no code it cannot vouch "
        f"for. If you trust it: {command}"
    )


def registry_refusals(
    models: Iterable[tuple[ModelCard, Path]], trusted: list[Path], served: str
) -> dict[Path, UntrustedArtifact]:
    """Before serving, the refusal (with the exact ``modelport serve ... --trust`` command) of
    each registry model's artifact that loads only by running code it carries (a
    ``python_function``-only model, a pickle, a ``torch.export`` program, untrusted skops
    types) and that no ``--trust models:/NAME`` vouches for."""
    found = {}
    for card, artifact in models:
        if not is_trusted(artifact, trusted):
            refusal = untrusted_refusal(card, artifact, served)
            if refusal is not None:
                found[artifact] = refusal
    return found
