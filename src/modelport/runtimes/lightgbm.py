"""LightGBM runtime: native text model files (``.txt``, from ``Booster.save_model``).

Feature names come from the booster (LightGBM's own ``Column_<i>`` placeholders count as no
names, so a card can name the inputs); the objective in the file's header says what it answers:
``multiclass``/``multiclassova`` one probability per class (``num_class`` of them), ``binary``
and ``cross_entropy`` two (classes ``0`` and ``1``), anything else (``regression*``, ``poisson``,
``lambdarank``, ...) a value. Class values are ``0..k-1``; the card's ``class_names`` name them.
Threads per prediction come from the card's ``parameters.threads`` (default 1).

Pickled ``LGBMClassifier`` objects load through the scikit-learn runtime's trusted-pickle path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import MissingExtra, ModelLoadError
from modelport.hints import pip_extra
from modelport.model.signature import ModelFacts
from modelport.runtimes import LoadContext, Outputs, Runtime

__all__ = ["LightGBMRuntime"]

_MULTICLASS = ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr")
_BINARY = ("binary", "cross_entropy", "xentropy")
_PLACEHOLDER = re.compile(r"^Column_\d+$")


def _import() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MissingExtra(f"runtime 'lightgbm' needs lightgbm: {pip_extra('lightgbm')}") from exc
    except OSError as exc:  # its library links the system's OpenMP runtime
        raise MissingExtra(
            f"lightgbm cannot load its library ({exc}); install the OpenMP runtime "
            "(Debian/Ubuntu: apt-get install libgomp1)"
        ) from exc
    return lightgbm


def _header(path: Path) -> dict[str, str]:
    """The ``key=value`` lines before the first tree (objective, num_class, feature_names...)."""
    header: dict[str, str] = {}
    with path.open(encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.startswith("Tree="):
                break
            key, sep, value = line.strip().partition("=")
            if sep:
                header[key] = value
    return header


def _kind(objective: str, n_classes: int) -> list[int] | None:
    """The class values the objective predicts, or ``None`` for a regressor or ranker."""
    if objective in _MULTICLASS:
        return list(range(n_classes))
    if objective in _BINARY:
        return [0, 1]
    return None


class LightGBMRuntime(Runtime):
    name = "lightgbm"
    suffixes = (".txt",)

    def __init__(self) -> None:
        self.booster: Any = None
        self.classes: list[int] | None = None
        self.threads = 1

    def load(self, context: LoadContext) -> ModelFacts:
        lightgbm = _import()
        path = context.artifact
        try:
            header = _header(path)
            booster = lightgbm.Booster(model_file=str(path))
        except (lightgbm.basic.LightGBMError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{path}: LightGBM cannot load it as a model: {first}") from exc
        objective = header.get("objective", "").split(" ")[0]
        self.classes = _kind(objective, int(booster.num_model_per_iteration()))
        self.booster = booster
        self.threads = int(context.card.parameters.get("threads", 1))
        names = [str(n) for n in booster.feature_name()]
        named = not all(_PLACEHOLDER.match(n) for n in names)
        return ModelFacts(
            n_features=int(booster.num_feature()),
            feature_names=names if named else None,
            kind="regression" if self.classes is None else "classification",
            classes=self.classes,
            has_probabilities=self.classes is not None,
        )

    def predict(self, rows: np.ndarray) -> Outputs:
        x = np.ascontiguousarray(rows, dtype=np.float64)
        raw = np.asarray(self.booster.predict(x, num_threads=self.threads), dtype=np.float64)
        if self.classes is None:
            return Outputs(predictions=raw)
        if len(self.classes) == 2 and raw.ndim == 1:
            proba = np.stack([1.0 - raw, raw], axis=1)
        else:
            proba = raw.reshape(len(rows), -1)
        return Outputs(predictions=proba.argmax(axis=1), probabilities=proba)

    def unload(self) -> None:
        self.booster = None
