"""modelport's answer shape, which is the tutorial's: ``{"prediction", "probability",
"probabilities"}`` for classifiers with probabilities (rounded to 4 places, as the tutorial does),
``{"prediction"}`` otherwise.
"""

from __future__ import annotations

from typing import Any

from modelport.dataplane import InferenceResult

__all__ = ["answers"]


def answers(result: InferenceResult) -> list[dict[str, Any]]:
    """One answer per row of ``result``."""
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
    return out
