"""The typed result of one data plane call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport.core.observe import Timing
from modelport.model.signature import Signature
from modelport.runtimes import Outputs

__all__ = ["InferenceResult"]


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """Predictions of one model version for a batch of rows, and how long they took."""

    model: str
    version: int
    signature: Signature
    outputs: Outputs
    timing: Timing | None = None  # arrival, batch start and end (perf_counter seconds)
    _labels: list[Any] | None = field(default=None, compare=False, repr=False)

    def output_arrays(self) -> dict[str, np.ndarray]:
        """Named output tensors: ``predict`` (labels or values), ``predict_proba`` if given."""
        labels = self.labels()
        if self.signature.output.kind == "regression" and self.outputs.predictions.ndim == 2:
            predict = np.asarray(self.outputs.predictions)  # vectors (embeddings) keep their dtype
        elif self.signature.output.kind == "regression":
            predict = np.asarray(labels, dtype=np.float64)
        elif all(isinstance(v, str) for v in labels):
            predict = np.empty(len(labels), dtype=object)
            predict[:] = labels
        else:
            predict = np.asarray(labels)
        arrays = {"predict": predict}
        proba = self.outputs.probabilities
        if proba is not None and self.signature.output.probabilities:
            arrays["predict_proba"] = np.asarray(proba, dtype=np.float64)
        return arrays

    def labels(self) -> list[Any]:
        """Each row's prediction as shown to users: class names or values as Python scalars.

        Worked out once (the answer and the outcome record both ask); callers must not change
        the list."""
        labels = self._labels
        if labels is None:
            labels = self._shown()
            object.__setattr__(self, "_labels", labels)
        return labels

    def _shown(self) -> list[Any]:
        predictions = self.outputs.predictions
        if self.signature.output.kind == "regression" and predictions.ndim == 2:
            return [row.tolist() for row in predictions]  # one vector per row (embeddings)
        if self.signature.output.kind == "regression":
            return [float(v) for v in predictions]
        return [self.signature.label(v) for v in predictions]
