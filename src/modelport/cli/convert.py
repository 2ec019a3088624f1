"""``modelport convert``: write a scikit-learn, XGBoost or LightGBM model's ONNX twin next to it
(skl2onnx; onnxmltools for boosters, :mod:`modelport.cli.convert_trees`) and check parity.

The twin (``model.onnx``, with the feature and class names in its metadata) goes into the same
version folder, and ``parity.json`` records the check on sample inputs: the card's examples and
rows drawn inside the signature's bounds. The check passes when every sample gets the same class
and probabilities differ by at most ``1e-4`` (for regressors: values within ``1e-4``, relative
to the value or to 1 when smaller; the twin computes in float32). A card with
``runtime: auto`` then serves the twin.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.cli.convert_trees import TREE_RUNTIMES, trees_to_onnx
from modelport.core.registry import Registry
from modelport.core.repository import PARITY_FILE, is_folder_model, scan
from modelport.errors import ConfigError, MissingExtra
from modelport.hints import pip_extra
from modelport.model.integrity import is_trusted, pin_artifact
from modelport.model.pins import Pins
from modelport.model.signature import FieldSpec, Signature
from modelport.runtimes import LoadContext, Runtime
from modelport.runtimes.onnx import OnnxRuntime
from modelport.runtimes.sklearn import SklearnRuntime

__all__ = ["Parity", "convert_to_onnx", "sample_rows"]

TOLERANCE = 1e-4


@dataclass(frozen=True)
class Parity:
    rows: int
    agreement: float
    max_abs_diff: float
    passed: bool
    twin: str


def _column(spec: FieldSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    example = float(spec.example_value())
    low = spec.gt if spec.gt is not None else spec.ge
    high = spec.lt if spec.lt is not None else spec.le
    low = low if low is not None else example - abs(example) - 1
    high = high if high is not None else example + abs(example) + 1
    values = rng.uniform(low, high, n)
    return np.round(values) if spec.type == "int" else values


def sample_rows(signature: Signature, n: int = 500, seed: int = 0) -> np.ndarray:
    """The signature's example plus ``n`` rows drawn inside its bounds (numeric models only)."""
    if any(f.type == "str" for f in signature.inputs):
        raise ConfigError("ONNX conversion covers numeric inputs only")
    rng = np.random.default_rng(seed)
    drawn = np.stack([_column(f, rng, n) for f in signature.inputs], axis=1)
    example = np.array([[float(f.example_value()) for f in signature.inputs]])
    return np.concatenate([example, drawn])


def _to_onnx(model: object, signature: Signature) -> bytes:
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        raise MissingExtra(f"converting needs skl2onnx: {pip_extra('onnx')}") from exc
    initial = [("input", FloatTensorType([None, len(signature.inputs)]))]
    options = {"zipmap": False} if signature.output.kind == "classification" else None
    try:
        proto = to_onnx(model, initial_types=initial, options=options, target_opset=15)
    except Exception as exc:
        raise ConfigError(f"skl2onnx cannot convert {type(model).__name__}: {exc}") from exc
    return _with_metadata(proto, signature)


def _twin(runtime: Runtime, signature: Signature) -> bytes:
    if isinstance(runtime, SklearnRuntime):
        return _to_onnx(runtime.model, signature)
    return _with_metadata(trees_to_onnx(runtime, len(signature.inputs)), signature)


def _with_metadata(proto: Any, signature: Signature) -> bytes:
    meta = {"modelport.feature_names": json.dumps(signature.names)}
    if signature.classes is not None:
        meta["modelport.classes"] = json.dumps(signature.classes)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data: bytes = proto.SerializeToString()
    return data


def _compare(
    signature: Signature, sk: Runtime, ox: OnnxRuntime, rows: np.ndarray
) -> tuple[float, float]:
    a, b = sk.predict(rows), ox.predict(rows)
    if signature.output.kind == "regression":
        x, y = a.predictions.astype(float), b.predictions.astype(float)
        relative = np.abs(x - y) / np.maximum(np.abs(x), 1.0)
        return float((relative <= TOLERANCE).mean()), float(relative.max())
    agreement = float((np.asarray(a.predictions) == np.asarray(b.predictions)).mean())
    diff = 0.0
    if a.probabilities is not None and b.probabilities is not None:
        diff = float(np.abs(a.probabilities - b.probabilities).max())
    return agreement, diff


def convert_to_onnx(
    path: Path, name: str | None, version: int | None, trusted: list[Path]
) -> Parity:
    """Write the ONNX twin of a scikit-learn model version and its parity report."""
    registry = Registry(scan(path), trusted=trusted)  # (nothing loads until asked)
    entry = registry.model(name)
    number = version or max(entry.versions)
    mv = entry.versions.get(number)
    if mv is None:
        raise ConfigError(f"model {entry.name!r} has no version {number} to convert")
    if mv.artifact.suffix == ".onnx" or is_folder_model(mv.artifact, entry.card):
        kind = "an ONNX file" if mv.artifact.suffix == ".onnx" else "a folder model"
        raise ConfigError(
            f"{entry.name!r} v{number} is {kind}: modelport converts scikit-learn, XGBoost and "
            "LightGBM models to ONNX (give another --model or --version)"
        )
    mv.load(registry.trusted)
    if mv.loaded is None or not isinstance(mv.loaded.runtime, (SklearnRuntime, *TREE_RUNTIMES)):
        raise ConfigError(
            f"cannot convert {entry.name!r} v{number}: "
            f"{mv.error or 'not scikit-learn, XGBoost or LightGBM'}"
        )
    signature = mv.loaded.signature
    rows = sample_rows(signature)  # refuses text inputs before converting anything
    twin = mv.artifact.with_name("model.onnx")
    twin.write_bytes(_twin(mv.loaded.runtime, signature))
    pin_artifact(twin, Pins.default(path))
    onnx_runtime = OnnxRuntime()
    onnx_runtime.load(LoadContext(twin, mv.card, is_trusted(twin, trusted)))
    agreement, diff = _compare(signature, mv.loaded.runtime, onnx_runtime, rows)
    passed = agreement == 1.0 and diff <= TOLERANCE
    parity = Parity(len(rows), agreement, diff, passed, str(twin))
    twin.with_name(PARITY_FILE).write_text(json.dumps(asdict(parity), indent=2) + "\n")
    return parity
