"""PyTorch runtime: TorchScript (``.pt``, from ``torch.jit.save``) and ``torch.export``
programs (``.pt2``, from ``torch.export.save``) that map an image tensor ``[batch, C, H, W]`` to
class scores ``[batch, classes]``.

The card describes the input (``signature: {input: image, shape: [C, H, W]}``); at load the
model runs once on a blank batch, which checks that shape and counts the classes. Inference runs
under ``torch.inference_mode()``; ``parameters.threads`` (default 1) sets torch's intra-op
threads, which are per process (the server already runs requests concurrently).
Both formats hold pickles (``torch.export.load`` unpickles with ``weights_only=False``), so like
joblib files they load only when their sha256 is pinned or their path is trusted
(:mod:`modelport.model.integrity`). A plain ``torch.save`` pickle of a module is refused.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from modelport.errors import MissingExtra, ModelLoadError
from modelport.hints import pip_extra
from modelport.model.integrity import read_verified
from modelport.model.signature import ModelFacts
from modelport.runtimes import LoadContext, Outputs, Runtime
from modelport.runtimes._scores import classify, probe

__all__ = ["JIT_DEPRECATED", "TorchRuntime"]

#: torch's warning that TorchScript is deprecated, silenced where modelport reads or writes it.
JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtra(f"runtime 'torch' needs torch: {pip_extra('torch')}") from exc
    return torch


def _load(torch: Any, context: LoadContext) -> Any:
    path = context.artifact
    data = io.BytesIO(
        read_verified(path, trusted=context.trusted, pins=context.pins)
    )  # the bytes that were hashed
    try:
        if path.suffix.lower() == ".pt2":
            return torch.export.load(data).module()
        with warnings.catch_warnings():  # deprecated in torch 2.13, still the common format
            warnings.filterwarnings("ignore", JIT_DEPRECATED, DeprecationWarning)
            module = torch.jit.load(data, map_location="cpu")
    except Exception as exc:
        what = "a torch.export program" if path.suffix.lower() == ".pt2" else "TorchScript"
        raise ModelLoadError(
            f"{path}: not a readable {what} file ({type(exc).__name__}: {exc}); save the model "
            "with torch.jit.save(torch.jit.script(model)) or torch.export.save"
        ) from exc
    module.eval()
    return module


class TorchRuntime(Runtime):
    name = "torch"
    suffixes = (".pt", ".pt2")

    def __init__(self) -> None:
        self.module: Any = None
        self.torch: Any = None
        self.softmax = True

    def load(self, context: LoadContext) -> ModelFacts:
        torch = _torch()
        threads = int(context.card.parameters.get("threads", 1))
        if threads >= 1 and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self.torch, self.module = torch, _load(torch, context)
        self.softmax, facts = probe(self._scores, context.card, context.artifact)
        return facts

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        torch = self.torch
        batch = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
        with torch.inference_mode():
            out = self.module(batch)
        if isinstance(out, tuple | list):
            out = out[0]
        return np.asarray(out.detach().cpu().numpy())

    def predict(self, rows: np.ndarray) -> Outputs:
        return classify(self._scores(rows), self.softmax)

    def unload(self) -> None:
        self.module = None
