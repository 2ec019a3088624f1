"""ONNX twins of XGBoost and LightGBM boosters through onnxmltools (target opset 15), for
``modelport convert``; the parity check is :mod:`modelport.cli.convert`'s, as for scikit-learn.
"""

from __future__ import annotations

from typing import Any

from modelport.errors import ConfigError, MissingExtra
from modelport.hints import pip_extra
from modelport.runtimes import Runtime
from modelport.runtimes.lightgbm import LightGBMRuntime
from modelport.runtimes.xgboost import XGBoostRuntime

__all__ = ["TREE_RUNTIMES", "trees_to_onnx"]

TREE_RUNTIMES = (XGBoostRuntime, LightGBMRuntime)


def _convert(runtime: XGBoostRuntime | LightGBMRuntime, n_features: int) -> Any:
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        raise MissingExtra(
            f"converting {runtime.name} models needs onnxmltools: {pip_extra('onnx')}"
        ) from exc
    initial = [("input", FloatTensorType([None, n_features]))]
    if isinstance(runtime, XGBoostRuntime):
        booster = runtime.booster.copy()
        booster.feature_names = None  # onnxmltools reads features as f0, f1, ... in tree dumps
        return onnxmltools.convert_xgboost(booster, initial_types=initial, target_opset=15)
    return onnxmltools.convert_lightgbm(
        runtime.booster, initial_types=initial, target_opset=15, zipmap=False
    )


def trees_to_onnx(runtime: Runtime, n_features: int) -> Any:
    """The ONNX model (a ``ModelProto``) computing what the booster of ``runtime`` does."""
    if not isinstance(runtime, TREE_RUNTIMES):
        raise ConfigError(f"{runtime.name} models are not boosters onnxmltools converts")
    try:
        proto = _convert(runtime, n_features)
    except MissingExtra:
        raise
    except Exception as exc:
        raise ConfigError(f"onnxmltools cannot convert this {runtime.name} model: {exc}") from exc
    for output in proto.graph.output:  # a fixed first dimension (LightGBM's label) is the batch
        dims = output.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            dims[0].dim_param = "N"
    return proto
