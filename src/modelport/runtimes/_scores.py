"""Class scores of tensor models (image classifiers) as :class:`Outputs`.

A model answers ``[batch, classes]`` scores: logits by default (softmax applied here), or
probabilities when its card says ``parameters: {scores: probabilities}``. Predictions are class
indices; the card's ``class_names`` name them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.errors import ConfigError, ModelLoadError
from modelport.model.card import ModelCard
from modelport.model.signature import ModelFacts
from modelport.runtimes import Outputs

__all__ = ["classify", "image_shape", "probe"]


def image_shape(card: ModelCard) -> tuple[int, int, int] | None:
    """The card's image tensor shape ``(C, H, W)``, if the card describes an image input."""
    image = card.signature.image() if card.signature else None
    return image.shape if image is not None else None


def _softmax(card: ModelCard) -> bool:
    kind = card.parameters.get("scores", "logits")
    if kind not in ("logits", "probabilities"):
        raise ConfigError(f"parameters.scores is logits or probabilities, got {kind!r}")
    return bool(kind == "logits")


def classify(scores: Any, softmax: bool) -> Outputs:
    """``[batch, classes]`` scores as predicted class indices and probabilities."""
    values = np.asarray(scores, dtype=np.float64)
    values = values.reshape(len(values), -1)
    if softmax:
        shifted = np.exp(values - values.max(axis=1, keepdims=True))
        values = shifted / shifted.sum(axis=1, keepdims=True)
    return Outputs(predictions=values.argmax(axis=1), probabilities=values)


def probe(predict: Any, card: ModelCard, artifact: object) -> tuple[bool, ModelFacts]:
    """Run the model once on a blank batch of the card's image shape: it must answer class
    scores. Returns whether to apply softmax, and the facts (class count) it learned."""
    shape = image_shape(card)
    if shape is None:
        raise ConfigError(
            f"{artifact}: describe the model's input in its card "
            "(signature: input: image, shape: [C, H, W])"
        )
    softmax = _softmax(card)
    try:
        scores = np.asarray(predict(np.zeros((2, *shape), dtype=np.float32)))
    except Exception as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if lines else ""  # TorchScript appends its whole traceback
        reason = reason.removeprefix(f"{type(exc).__name__}: ")
        raise ModelLoadError(
            f"{artifact}: the model fails on a blank batch of shape {[2, *shape]} "
            f"(does the card's shape fit it?): {type(exc).__name__}: {reason}"
        ) from exc
    if scores.ndim != 2 or scores.shape[0] != 2:
        raise ModelLoadError(
            f"{artifact}: expected class scores [batch, classes], got shape {list(scores.shape)}"
        )
    classes = list(range(scores.shape[1]))
    facts = ModelFacts(kind="classification", classes=classes, has_probabilities=True)
    return softmax, facts
