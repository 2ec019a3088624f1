"""ONNX Runtime: any ``.onnx`` model with one input tensor ``[batch, n_features]``.

The first output is the prediction (labels or values); a second 2-D output, when present, holds
the class probabilities. Feature and class names come from the model's metadata when
``modelport convert`` wrote them (``modelport.feature_names``, ``modelport.classes``), else from the
card. Threads per session come from the card's ``parameters.threads`` (default 1: the server
already runs requests concurrently).

An image model (card: ``signature: {input: image, shape: [C, H, W]}``) takes one input
``[batch, C, H, W]`` and answers class scores ``[batch, classes]`` (see
:mod:`modelport.runtimes._scores`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from modelport.errors import MissingExtra, ModelLoadError
from modelport.hints import pip_extra
from modelport.model.signature import ModelFacts
from modelport.runtimes import LoadContext, Outputs, Runtime
from modelport.runtimes._scores import classify, image_shape, probe

__all__ = ["OnnxRuntime"]


def _meta(meta: dict[str, str], key: str) -> Any:
    return json.loads(meta[key]) if key in meta else None


class OnnxRuntime(Runtime):
    name = "onnx"
    suffixes = (".onnx",)

    def __init__(self) -> None:
        self.session: Any = None
        self.input_name = ""
        self.dtype: Any = np.float32
        self.softmax: bool | None = None  # set for image models

    def load(self, context: LoadContext) -> ModelFacts:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingExtra(f"runtime 'onnx' needs onnxruntime: {pip_extra('onnx')}") from exc

        options = ort.SessionOptions()
        threads = int(context.card.parameters.get("threads", 1))
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(context.artifact), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(f"{context.artifact}: ONNX Runtime cannot load it: {exc}") from exc
        inputs = session.get_inputs()
        if image_shape(context.card) is not None and len(inputs) == 1:
            return self._load_image(session, context)
        if len(inputs) != 1 or len(inputs[0].shape) != 2:
            shapes = [(i.name, i.shape) for i in inputs]
            hint = ""
            if len(inputs) == 1 and len(inputs[0].shape) == 4:
                hint = "; for an image model say so in its card: signature: input: image"
            raise ModelLoadError(
                f"{context.artifact}: expected one input of shape [batch, features], "
                f"got {shapes}{hint}"
            )
        self.session, self.input_name = session, inputs[0].name
        self.dtype = np.float64 if "double" in inputs[0].type else np.float32
        width = inputs[0].shape[1]
        meta = session.get_modelmeta().custom_metadata_map
        names = _meta(meta, "modelport.feature_names")
        classes = _meta(meta, "modelport.classes")
        outputs = session.get_outputs()
        has_proba = len(outputs) > 1 and len(outputs[1].shape or []) == 2
        return ModelFacts(
            n_features=width if isinstance(width, int) else None,
            feature_names=names,
            kind="classification" if has_proba or classes else "regression",
            classes=classes,
            has_probabilities=has_proba,
        )

    def _load_image(self, session: Any, context: LoadContext) -> ModelFacts:
        tensor = session.get_inputs()[0]
        self.session, self.input_name = session, tensor.name
        self.dtype = np.float64 if "double" in tensor.type else np.float32
        dims = [d if isinstance(d, int) else None for d in tensor.shape[1:]]
        wanted = image_shape(context.card)
        if len(dims) != 3 or any(
            d not in (None, w) for d, w in zip(dims, wanted or (), strict=False)
        ):
            raise ModelLoadError(
                f"{context.artifact}: the card's image shape {list(wanted or ())} differs from "
                f"the model's input {['batch', *dims]}"
            )
        self.softmax, facts = probe(self._scores, context.card, context.artifact)
        return facts.model_copy(update={"input_shape": dims})

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: rows.astype(self.dtype)})[0])

    def predict(self, rows: np.ndarray) -> Outputs:
        if self.softmax is not None:
            return classify(self._scores(rows), self.softmax)
        results = self.session.run(None, {self.input_name: rows.astype(self.dtype)})
        predictions = np.asarray(results[0]).reshape(len(rows), -1)
        predictions = predictions[:, 0] if predictions.shape[1] == 1 else predictions
        proba = np.asarray(results[1], dtype=np.float64) if len(results) > 1 else None
        return Outputs(predictions=predictions, probabilities=proba)

    def unload(self) -> None:
        self.session = None
