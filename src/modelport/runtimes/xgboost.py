"""XGBoost runtime: native model files (``.json``, ``.ubj``) loaded into a ``Booster``.

Feature names and their number come from the booster; the objective says what it answers:
``multi:softprob``/``multi:softmax`` give one probability per class, ``binary:logistic`` and
``binary:logitraw`` two (classes ``0`` and ``1``), ``binary:hinge`` a class without
probabilities, anything else (``reg:*``, ``count:*``, ``survival:*``, ``rank:*``) a value. Class
values are the booster's indices ``0..k-1``; the card's ``class_names`` name them. Threads per
prediction come from the card's ``parameters.threads`` (default 1).

Models saved with the scikit-learn API (``XGBClassifier.save_model``) are native files too;
pickled ``XGBClassifier`` objects load through the scikit-learn runtime's trusted-pickle path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from modelport.errors import MissingExtra, ModelLoadError
from modelport.hints import pip_extra
from modelport.model.signature import ModelFacts
from modelport.runtimes import LoadContext, Outputs, Runtime
from modelport.runtimes._scores import classify

__all__ = ["XGBoostRuntime"]

_LOCATION = re.compile(r"^\[[\d:]+\] \S+:\d+: ")
_PROBABILITY = ("multi:softprob", "multi:softmax", "binary:logistic", "binary:logitraw")


def _import() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise MissingExtra(f"runtime 'xgboost' needs xgboost: {pip_extra('xgboost')}") from exc
    return xgboost


def _reason(exc: Exception) -> str:
    """The first line of XGBoost's message, without its ``[time] source.cc:line:`` prefix."""
    lines = str(exc).strip().splitlines()
    return _LOCATION.sub("", lines[0]) if lines else type(exc).__name__


def _objective(booster: Any) -> tuple[str, int]:
    """The booster's objective name and its number of classes (0 when it has none)."""
    learner = json.loads(booster.save_config())["learner"]
    classes = int(float(learner["learner_model_param"].get("num_class", 0)))
    return str(learner["objective"]["name"]), classes


class XGBoostRuntime(Runtime):
    name = "xgboost"
    suffixes = (".json", ".ubj")

    def __init__(self) -> None:
        self.booster: Any = None
        self.objective = ""

    def load(self, context: LoadContext) -> ModelFacts:
        xgboost = _import()
        booster = xgboost.Booster()
        try:
            booster.load_model(str(context.artifact))
            objective, n_classes = _objective(booster)
        except (xgboost.core.XGBoostError, ValueError, KeyError) as exc:
            raise ModelLoadError(
                f"{context.artifact}: XGBoost cannot load it as a model: {_reason(exc)}"
            ) from exc
        booster.set_param({"nthread": int(context.card.parameters.get("threads", 1))})
        self.booster, self.objective = booster, objective
        names = list(booster.feature_names) if booster.feature_names else None
        if objective.startswith("multi:"):
            classes: list[int] | None = list(range(n_classes))
        elif objective.startswith("binary:"):
            classes = [0, 1]
        else:
            classes = None
        return ModelFacts(
            n_features=int(booster.num_features()),
            feature_names=names,
            kind="regression" if classes is None else "classification",
            classes=classes,
            has_probabilities=objective in _PROBABILITY,
        )

    def predict(self, rows: np.ndarray) -> Outputs:
        x = np.ascontiguousarray(rows, dtype=np.float32)
        objective = self.objective
        if objective not in _PROBABILITY:
            values = np.asarray(self.booster.inplace_predict(x))
            if objective == "binary:hinge":
                values = values.astype(np.int64)
            return Outputs(predictions=values)
        # softprob and logistic give probabilities; softmax and logitraw only from the margin
        kind = "value" if objective in ("multi:softprob", "binary:logistic") else "margin"
        raw = np.asarray(self.booster.inplace_predict(x, predict_type=kind), dtype=np.float64)
        if objective.startswith("binary:"):
            positive = raw.reshape(len(rows))
            if kind == "margin":
                positive = 1.0 / (1.0 + np.exp(-positive))
            return classify(np.stack([1.0 - positive, positive], axis=1), softmax=False)
        return classify(raw.reshape(len(rows), -1), softmax=kind == "margin")

    def unload(self) -> None:
        self.booster = None
