"""The digits example: a small CNN on scikit-learn's 8x8 handwritten digits (``load_digits``),
trained in about a second, deterministic (seeded, one thread), written as one model ``digits``
with two versions: TorchScript (``model.pt``) and its ONNX export (``model.onnx``).

The network takes ``[batch, 1, 8, 8]`` pixels scaled to 0..1 (ink bright, as in the dataset),
so an 8-bit grayscale PNG of a digit is preprocessed with ``scale: 1/255``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.versions import add_version
from modelport.errors import MissingExtra
from modelport.hints import pip_extra
from modelport.model.card import ModelCard
from modelport.model.imagespec import Preprocessing
from modelport.model.signature import CardSignature, OutputSpec
from modelport.runtimes.torch import JIT_DEPRECATED

__all__ = ["digits_card", "digits_data", "train_digits"]

EPOCHS = 12
SEED = 0


def digits_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and held-out images ``[n, 1, 8, 8]`` scaled to 0..1, and their labels (a stratified
    25% held out, seeded)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (np.asarray(data.images, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
    labels = np.asarray(data.target, dtype=np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=0.25, random_state=SEED, stratify=labels
    )
    return train_x, test_x, train_y, test_y


def _network(torch: Any) -> Any:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10),
    )


def _train(torch: Any, train_x: np.ndarray, train_y: np.ndarray) -> Any:
    torch.manual_seed(SEED)
    model = _network(torch)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(train_x), torch.from_numpy(train_y)
    order = np.random.default_rng(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch in np.array_split(order.permutation(len(x)), len(x) // 64):
            index = torch.from_numpy(batch)
            optimiser.zero_grad()
            loss_fn(model(x[index]), y[index]).backward()
            optimiser.step()
    return model.eval()


def digits_card(accuracy: float, n_test: int) -> ModelCard:
    return ModelCard(
        description=(
            "Handwritten digit (0-9) from an 8x8 grayscale image: a small CNN trained on 75% of "
            f"scikit-learn's load_digits; held-out accuracy {accuracy:.3f} on the other "
            f"{n_test} images. Version 1 is TorchScript, version 2 its ONNX export."
        ),
        signature=CardSignature(
            input="image",
            shape=(1, 8, 8),
            top_k=3,
            preprocessing=Preprocessing(color="grayscale", resize="box", scale=1 / 255),
            output=OutputSpec(kind="classification", class_names=[str(i) for i in range(10)]),
        ),
    )


def _export_onnx(torch: Any, model: Any, example: Any, path: Path) -> None:
    """ONNX with a dynamic batch axis (the dynamo exporter needs an example batch of 2 or more)."""
    batch = torch.export.Dim("batch", min=1)
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # the exporter's progress notes, "torchvision is not installed", ...
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                external_data=False,
                input_names=["image"],
                output_names=["scores"],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def train_digits(
    repo: Path, name: str = "digits", estimator: str = "cnn", version: int | None = None
) -> Path:
    """Train the CNN and write version ``version`` (TorchScript) and the next (ONNX) of ``name``.

    ``estimator`` is ignored (there is one network). Returns the TorchScript artifact.
    """
    missing = [m for m in ("torch", "onnxscript", "onnxruntime") if find_spec(m) is None]
    if missing:  # checked before training: the ONNX export and the ONNX version need them too
        raise MissingExtra(f"the digits example needs {', '.join(missing)}: {pip_extra('torch')}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same weights on every machine, every run
    try:
        train_x, test_x, train_y, test_y = digits_data()
        model = _train(torch, train_x, train_y)
        with torch.inference_mode():
            predicted = model(torch.from_numpy(test_x)).argmax(dim=1).numpy()
    finally:
        torch.set_num_threads(threads)
    accuracy = float((predicted == test_y).mean())
    card = digits_card(accuracy, len(test_y))
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "model.pt"
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13
            warnings.filterwarnings("ignore", JIT_DEPRECATED, DeprecationWarning)
            torch.jit.save(torch.jit.script(model), str(script))
        onnx = Path(tmp) / "model.onnx"
        _export_onnx(torch, model, torch.from_numpy(test_x[:2]), onnx)  # before writing any
        first = add_version(repo, name, script, card, version)
        add_version(repo, name, onnx, None, int(first.parent.name) + 1)
    return first
