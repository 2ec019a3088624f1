"""Runtimes: one small module per framework, discovered through the ``modelport.runtimes``
entry-point group so a third-party package can add its own.

A runtime sees numpy arrays, never HTTP or wire types.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

import numpy as np

from modelport.errors import ConfigError, MissingExtra
from modelport.hints import pip_extra
from modelport.model.card import ModelCard
from modelport.model.pins import Pins
from modelport.model.signature import ModelFacts

__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadContext",
    "Outputs",
    "Runtime",
    "available_runtimes",
    "get_runtime",
    "runtime_for_file",
    "runtime_reads",
]

ENTRY_POINT_GROUP = "modelport.runtimes"

# Runtimes that ship with modelport behind an optional extra: a missing extra gets a one-line hint.
EXTRAS = {
    "onnx": "onnx",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "transformers": "transformers",
}


BUILTIN_SUFFIXES = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".skops": "sklearn",
    ".fake": "fake",
    ".onnx": "onnx",
    ".pt": "torch",
    ".pt2": "torch",
    ".ubj": "xgboost",
    ".safetensors": "transformers",
}
# Suffixes other files share (a parity report, notes): such a file is a model when the card's
# runtime names that runtime, or when its first bytes are that framework's model header.
SNIFFED_SUFFIXES = {".json": "xgboost", ".txt": "lightgbm"}
_HEADERS = {"xgboost": b'{"learner":', "lightgbm": b"treeversion="}  # whitespace removed
BUILTIN_NAMES = {*BUILTIN_SUFFIXES.values(), *SNIFFED_SUFFIXES.values(), *EXTRAS}


@dataclass(frozen=True, slots=True)
class LoadContext:
    """What a runtime is given to load one model version: ``trusted`` when the user trusts the
    path as it is (``--trust``), else ``pins`` vouch (or not) for what loads code."""

    artifact: Path
    card: ModelCard
    trusted: bool
    pins: Pins | None = None


@dataclass(frozen=True, slots=True)
class Outputs:
    """A batch of predictions: one entry per input row.

    ``predictions`` holds class values (classifiers) or numbers (regressors); ``probabilities``
    is ``(rows, classes)`` in the order of the model's classes, when the model gives them.
    """

    predictions: np.ndarray
    probabilities: np.ndarray | None = None


class Runtime(abc.ABC):
    """Loads one model version and predicts batches with it.

    ``predict`` is synchronous; when ``blocking`` is true the server runs it in a worker thread so
    the event loop keeps answering (except batches of numbers that the model lately ran in under
    0.2 ms, where the thread would cost more: :data:`modelport.core.dataplane.INLINE_S`). When
    ``batchable`` is true, concurrent requests are merged into one ``predict`` call (rows
    concatenated, outputs split back).
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()
    blocking: ClassVar[bool] = True
    batchable: ClassVar[bool] = True

    @abc.abstractmethod
    def load(self, context: LoadContext) -> ModelFacts:
        """Load the artifact; return what the model itself says about its inputs and outputs."""

    @abc.abstractmethod
    def predict(self, rows: np.ndarray) -> Outputs:
        """Predict a 2-D batch whose columns are in signature order."""

    def check(self, rows: np.ndarray) -> None:  # noqa: B027  (optional hook: accept by default)
        """Refuse one request's rows before they join a batch (an error here fails only them)."""

    def unload(self) -> None:  # noqa: B027  (optional hook, nothing to release by default)
        """Release what ``load`` took."""


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_runtimes() -> list[str]:
    return sorted(_entry_points())


def get_runtime(name: str) -> type[Runtime]:
    """The runtime class registered under ``name``; a hint when its extra is missing."""
    point = _entry_points().get(name)
    if point is None:
        if name in EXTRAS:
            raise MissingExtra(f"runtime {name!r} is not installed: {pip_extra(EXTRAS[name])}")
        raise ConfigError(
            f"unknown runtime {name!r}; installed runtimes: {', '.join(available_runtimes())}"
        )
    try:
        loaded = point.load()  # type: ignore[attr-defined]
    except ImportError as exc:
        extra = EXTRAS.get(name, name)
        raise MissingExtra(
            f"runtime {name!r} needs {exc.name or 'a missing package'}: {pip_extra(extra)}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Runtime)):
        raise ConfigError(f"entry point {name!r} does not name a modelport Runtime class")
    return loaded


def _sniff(path: Path, runtime: str) -> bool:
    try:
        with path.open("rb") as file:
            head = file.read(64)
    except OSError:
        return False
    return b"".join(head.split()).startswith(_HEADERS[runtime])


def runtime_for_file(path: Path) -> str | None:
    """The name of the runtime that reads files like ``path``, if any.

    Built-in runtimes are matched by suffix without importing their framework (``.json`` and
    ``.txt`` by their first bytes too); third-party ones are imported to read their ``suffixes``.
    """
    suffix = path.suffix.lower()
    if suffix in BUILTIN_SUFFIXES:
        return BUILTIN_SUFFIXES[suffix]
    if suffix in SNIFFED_SUFFIXES and _sniff(path, SNIFFED_SUFFIXES[suffix]):
        return SNIFFED_SUFFIXES[suffix]
    for name in available_runtimes():
        if name in BUILTIN_NAMES:
            continue
        try:
            runtime = get_runtime(name)
        except ConfigError:
            continue
        if suffix in runtime.suffixes:
            return name
    return None


def runtime_reads(runtime: str, path: Path) -> bool:
    """Whether ``runtime`` reads files with the suffix of ``path`` (whatever their content)."""
    suffix = path.suffix.lower()
    if BUILTIN_SUFFIXES.get(suffix) == runtime or SNIFFED_SUFFIXES.get(suffix) == runtime:
        return True
    if runtime in BUILTIN_NAMES:
        return False
    try:
        return suffix in get_runtime(runtime).suffixes
    except ConfigError:
        return False
