"""The registry: ``(name, version) -> loaded model``, each model's default version, loading.

Loading never raises for one bad model: its versions are marked ``failed`` with the reason, and
the other models keep loading and serving. The reason kept (and shown by ``/models``, ``/ready``,
the V2 repository index and the 503 of its routes) names files relative to the repository and
no hash; the log line has the whole message, with the command that fixes it.

Readiness: strict (the default, as Triton's ``--strict-readiness``) while every model serves and
no version failed to load; lenient while at least one model serves; never with no model loaded.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from modelport.batching import Batcher
from modelport.core.repository import ModelSource, is_folder_model, scan, served_runtime
from modelport.core.schemas import request_model
from modelport.core.validation import bounded
from modelport.errors import (
    BadRequest,
    ConfigError,
    ModelLoadError,
    ModelNotFound,
    ModelNotReady,
    ModelportError,
)
from modelport.model.card import ModelCard
from modelport.model.images import image_request_model, image_rows
from modelport.model.integrity import verify_pinned
from modelport.model.pins import Pins, TrustPolicy
from modelport.model.signature import Signature, resolve_signature
from modelport.runtimes import LoadContext, Outputs, Runtime, get_runtime
from modelport.sources import is_registry_uri
from modelport.sources.registry import registry_pins, untrusted_refusal

__all__ = [
    "LoadedModel",
    "ModelState",
    "ModelVersion",
    "Registry",
    "RegistryModel",
    "public_reason",
]

log = logging.getLogger("modelport.core.registry")

_HASH = re.compile(r"\b[0-9a-fA-F]{64}\b")
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])/[^\s'\"(),;]+")


def public_reason(message: str, root: Path | None) -> str:
    """``message``'s first line as anyone may read it: paths relative to the repository, other
    absolute paths cut to their last part, hashes left out."""
    line = message.splitlines()[0] if message else message
    if root is not None:
        for base in sorted({str(root.absolute()), str(root.resolve())}, key=len, reverse=True):
            line = line.replace(base + "/", "").replace(base, root.name)
    line = _HASH.sub("<sha256>", line)
    return _ABSOLUTE.sub(lambda m: Path(m.group()).name or "/", line)


class ModelState(str, enum.Enum):
    PENDING = "pending"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(slots=True)
class LoadedModel:
    """A model version ready to serve: its runtime, signature and derived request model.

    ``batcher`` is created by the data plane on first use, inside the serving event loop.
    """

    name: str
    version: int
    card: ModelCard
    runtime_name: str
    runtime: Runtime
    signature: Signature
    request: type[BaseModel]
    field_names: tuple[str, ...]
    batcher: Batcher[Any, Outputs] | None = None  # Any: the data plane's queued job
    inflight: int = 0  # requests holding this version (counted by modelport.traffic.router)
    batch_seconds: float | None = None  # a running average of its batches' time in predict
    row_dtype: Any = field(init=False)  # float64 for numbers only, object when text is in

    def __post_init__(self) -> None:
        numeric = all(f.type != "str" for f in self.signature.inputs)
        self.row_dtype = np.float64 if numeric else object

    def rows(self, records: Sequence[BaseModel]) -> np.ndarray:
        """Validated request records as one batch: ``(batch, n_inputs)`` rows, or images."""
        if self.signature.image is not None:
            return image_rows(records)
        table = [[getattr(r, name) for name in self.field_names] for r in records]
        return np.asarray(table, dtype=self.row_dtype).reshape(len(records), len(self.field_names))


@dataclass
class ModelVersion:
    """One version of one model, loaded or not.

    ``error`` is the public reason of a failure, ``detail`` its whole message (for the log and
    the CLI). A ``candidate`` is a version loaded on demand (a rollout); its failure does not
    make the server unready.
    """

    name: str
    version: int
    card: ModelCard
    artifact: Path
    state: ModelState = ModelState.PENDING
    error: str | None = None
    loaded: LoadedModel | None = None
    load_seconds: float | None = None
    root: Path | None = None
    detail: str | None = None
    candidate: bool = False

    def load(self, trusted: Iterable[Path] | TrustPolicy) -> None:
        """Load the artifact through its runtime and derive the signature and request model."""
        self.state = ModelState.LOADING
        started = time.perf_counter()
        try:
            name = served_runtime(self.artifact, self.card)
            if name is None:
                raise ConfigError(
                    f"{self.artifact}: no runtime reads {self.artifact.suffix or 'this'} files; "
                    "set `runtime` in the model card"
                )
            runtime = get_runtime(name)()
            facts = runtime.load(self._context(TrustPolicy.of(trusted)))
            signature = resolve_signature(self.card.signature, facts)
            if signature.image is not None:
                request = image_request_model(self.name, signature.image, strict=self.card.strict)
            else:
                request = request_model(self.name, signature, strict=self.card.strict)
        except ModelportError as exc:
            self.fail(exc.message)
            return
        except Exception as exc:  # a runtime's own failure: report it, keep serving the rest
            self.fail(f"{type(exc).__name__}: {exc}")
            return
        self.loaded = LoadedModel(
            self.name,
            self.version,
            self.card,
            name,
            runtime,
            signature,
            request,
            tuple(request.model_fields),
        )
        self.load_seconds = time.perf_counter() - started
        self.state, self.error, self.detail = ModelState.READY, None, None
        log.info("loaded %s v%d (%s) in %.2fs", self.name, self.version, name, self.load_seconds)

    def _context(self, trust: TrustPolicy) -> LoadContext:
        """What the runtime is given: a registry version's pins are the cache's, and one that
        loads only by running code it carries is refused unless trusted; a pinned file that no
        longer matches its pin is refused here, whatever its format (pickles again on the very
        bytes the runtime loads)."""
        trusted = trust.trusts(self.artifact)
        if is_registry_uri(self.card.source):
            refusal = None if trusted else untrusted_refusal(self.card, self.artifact)
            if refusal is not None:
                raise refusal
            pins: Pins | None = registry_pins()
        else:
            pins = trust.pins
            if pins is None and self.root is not None:
                pins = Pins.default(self.root)
        if not is_folder_model(self.artifact, self.card):  # its runtime checks the whole folder
            verify_pinned(self.artifact, trusted=trusted, pins=pins)
        return LoadContext(self.artifact, self.card, trusted, pins)

    def fail(self, message: str) -> None:
        """Mark this version failed: the log has ``message``, ``error`` its public reason."""
        self.state, self.detail = ModelState.FAILED, message
        self.error = public_reason(message, self.root)
        log.error("failed to load %s v%d: %s", self.name, self.version, message)

    def unload(self) -> None:
        if self.loaded is not None:
            self.loaded.runtime.unload()
        self.loaded, self.state = None, ModelState.PENDING


@dataclass
class RegistryModel:
    """A model name with its versions."""

    name: str
    card: ModelCard
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    folder: Path | None = None
    active: int | None = None  # set by a rollout; beats the card's pin
    previous: int | None = None  # what served before the last rollout: the rollback target
    source: dict[str, Any] | None = None  # a registry model's follow status (traffic.follow)

    @property
    def default_version(self) -> int:
        """The rolled-out version, else the card's pinned version, else the highest ready
        version, else the highest."""
        if self.active is not None:
            return self.active
        if self.card.default_version is not None:
            return self.card.default_version
        ready = [v for v, mv in self.versions.items() if mv.state is ModelState.READY]
        return max(ready or self.versions)

    @property
    def ready(self) -> bool:
        version = self.versions.get(self.default_version)
        return version is not None and version.state is ModelState.READY


def _model_of(source: ModelSource) -> RegistryModel:
    model = RegistryModel(source.name, source.card, folder=source.folder)
    served = set(source.card.version_policy.select(source.versions))
    if source.card.default_version is not None:
        served.add(source.card.default_version)
    for version, artifact in sorted(source.versions.items()):
        if version not in served:
            continue
        mv = ModelVersion(source.name, version, source.card, artifact, root=source.root)
        if version in source.problems:
            mv.fail(source.problems[version])
        model.versions[version] = mv
    return model


def _is(source: ModelSource, name: str, known: RegistryModel | None) -> bool:
    """Whether ``source`` is model ``name`` (``known`` when served): by name, or by its folder
    when its card no longer reads (a broken card's model takes its folder's name)."""
    if source.name == name:
        return True
    folder = known.folder if known is not None else None
    return source.error is not None and folder is not None and source.folder == folder


class Registry:
    """All models of one server."""

    def __init__(
        self,
        sources: Iterable[ModelSource],
        *,
        default_model: str | None = None,
        trusted: Iterable[Path] | TrustPolicy = (),
        origin: Path | None = None,
        pins: Pins | None = None,
        strict_readiness: bool = True,
    ) -> None:
        """``pins``: the trusted pins (default: the lock beside the scanned path)."""
        self.models: dict[str, RegistryModel] = {}
        trust = TrustPolicy.of(trusted)
        self.trusted = TrustPolicy(trust.paths, pins or trust.pins)
        self.origin = origin
        self.strict_readiness = strict_readiness
        readable = []  # a model whose card does not read is never the default by itself
        for source in sources:
            if source.name in self.models:
                raise ConfigError(f"two models are named {source.name!r}")
            self.models[source.name] = _model_of(source)
            readable += [source.name] if source.error is None else []
        if default_model is not None and default_model not in self.models:
            raise ConfigError(
                f"default model {default_model!r} is not in the repository: {sorted(self.models)}"
            )
        self.default_model = default_model or min(readable or self.models, default=None)
        self._loaded = threading.Event()
        self.generation = (
            0  # counts changes to what is served: documents derived from it cache on it
        )

    def changed(self) -> None:
        """Record a change to the models, versions or defaults served (a load, a reload, a
        rollout, an unload)."""
        self.generation += 1

    @property
    def loaded(self) -> bool:
        """Whether loading has finished (successfully or not) for every version."""
        return self._loaded.is_set()

    def wait_loaded(self, timeout_s: float | None = None) -> bool:
        """Block until loading has finished; False on timeout."""
        return self._loaded.wait(timeout_s)

    @property
    def ready(self) -> bool:
        """Whether the server takes traffic: loading is done and some model serves; when strict,
        every model serves and no version (but a rollout's candidate) failed to load."""
        models = list(self.models.values())
        serving = [m.ready for m in models]
        if not self.loaded or not any(serving):
            return False
        if not self.strict_readiness:
            return True
        failed = any(
            mv.state is ModelState.FAILED and not mv.candidate
            for m in models
            for mv in m.versions.values()
        )
        return all(serving) and not failed

    def load_model(self, name: str) -> None:
        """Load every pending version of one model."""
        for mv in self.model(name).versions.values():
            if mv.state is ModelState.PENDING:
                mv.load(self.trusted)
                self.changed()

    def load_all(self) -> None:
        for name in self.models:
            self.load_model(name)
        self._loaded.set()

    def reload(self, name: str) -> RegistryModel:
        """Load model ``name`` afresh from the repository on disk and swap it in atomically.

        The old versions serve until the new ones are loaded. If a version that had not failed
        before fails (a new one, or one that served), or none loads, nothing is swapped and the
        errors are raised; one that failed before too fails on, as it would at startup.
        """
        if self.origin is None:
            raise BadRequest("this server was not started from a model repository")
        known = self.models.get(name)
        where = known.folder if known is not None and known.folder is not None else self.origin
        sources = [s for s in scan(where) if _is(s, name, known)]  # not the other models'
        if not sources:
            raise ModelNotFound(f"model {name!r} is not in the model repository")
        if sources[0].error is not None:  # its card does not read: the old versions serve on
            raise sources[0].error
        model = _model_of(sources[0])
        for mv in model.versions.values():
            if mv.state is ModelState.PENDING:
                mv.load(self.trusted)
        failed = [mv for mv in model.versions.values() if mv.loaded is None]
        before = known.versions if known is not None else {}
        new = [mv for mv in failed if mv.version not in before or before[mv.version].loaded]
        if new or len(failed) == len(model.versions):
            errors = "; ".join(f"v{mv.version}: {mv.error}" for mv in new or failed)
            for mv in model.versions.values():
                mv.unload()
            raise ModelLoadError(f"failed to load {name!r}: {errors}; nothing changed")
        if known is not None and known.active in model.versions:  # a rollout outlives a reload
            model.active, model.previous = known.active, known.previous
        self.models[name] = model  # in-flight requests keep the versions they already hold
        self.changed()
        return model

    def unload(self, name: str) -> None:
        """Stop serving ``name``; requests in flight finish on the versions they hold."""
        self.model(name)  # 404 when unknown
        del self.models[name]
        self.changed()

    def unload_all(self) -> None:
        for model in self.models.values():
            for mv in model.versions.values():
                mv.unload()

    def model(self, name: str | None) -> RegistryModel:
        key = self.default_model if name is None else name
        if key is None or key not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            shown = bounded(key, 130) if key is not None else None
            what = f"model {shown!r}" if name is not None else f"the default model {shown!r}"
            raise ModelNotFound(f"{what} not found; models served here: {known}")
        return self.models[key]

    def get(self, name: str | None, version: int | None = None) -> LoadedModel:
        """The ready version asked for (default: the model's default); 404 or 503 otherwise."""
        model = self.model(name)
        number = model.default_version if version is None else version
        mv = model.versions.get(number)
        if mv is None:
            known = ", ".join(str(v) for v in sorted(model.versions))
            raise ModelNotFound(f"model {model.name!r} has no version {number}; versions: {known}")
        if mv.loaded is None:
            reason = f": {mv.error}" if mv.error else " yet"
            raise ModelNotReady(f"model {model.name!r} version {number} is not loaded{reason}")
        return mv.loaded
