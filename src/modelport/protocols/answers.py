"""modelport's answer shape, which is the tutorial's: ``{"prediction", "probability",
"probabilities"}`` for classifiers with probabilities (rounded to 4 places, as the tutorial does),
``{"prediction"}`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelport.core.result import InferenceResult
from modelport.model.images import top_k as _top_k

__all__ = ["answers"]


def answers(
    result: InferenceResult, top_k: Sequence[int | None] | None = None
) -> list[dict[str, Any]]:
    """One answer per row of ``result``; image models add each row's ``top_k`` classes (``k``
    from ``top_k[row]`` when given, else the card's)."""
    labels = result.labels()
    proba = result.outputs.probabilities
    if proba is None or not result.signature.output.probabilities:
        return [{"prediction": label} for label in labels]
    out = []
    for label, row in zip(labels, proba.tolist(), strict=True):
        out.append(
            {
                "prediction": label,
                "probability": max(row),
                "probabilities": [round(p, 4) for p in row],
            }
        )
    image = result.signature.image
    if image is not None:
        names = [result.signature.label(c) for c in result.signature.classes or []]
        for index, answer in enumerate(out):
            k = (top_k[index] if top_k else None) or image.top_k
            answer["top_k"] = _top_k(names, proba[index], k)
    return out
