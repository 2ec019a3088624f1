"""An MLflow model folder's ``MLmodel`` file, read as YAML (MLflow is not imported): which of
modelport's runtimes loads it, which file it loads, and the model card its signature and input
example give.

| MLflow flavor | modelport runtime | file |
|---|---|---|
| ``onnx`` | onnx | ``data`` |
| ``xgboost`` | xgboost | ``data`` (UBJSON or JSON) |
| ``lightgbm`` | lightgbm (a ``Booster``), else sklearn | ``data`` |
| ``sklearn`` | sklearn (skops; a pickle with ``--trust``) | ``pickled_model`` |
| ``pytorch`` | torch (``torch.export``, with ``--trust``) | ``<model_data>/model.pt2`` |
| ``pytorch``, pickled | mlflow_pyfunc, with ``--trust`` only | the folder |
| ``transformers`` | transformers (safetensors) | ``model/`` |
| ``python_function`` only | mlflow_pyfunc, with ``--trust`` only | the folder |
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from modelport.errors import ConfigError
from modelport.model.card import ModelCard
from modelport.model.signature import CardSignature, FieldSpec, FieldType, OutputSpec

__all__ = ["PYFUNC", "MlflowModel", "flavors_of", "read_mlmodel"]

PYFUNC = "mlflow_pyfunc"
_TYPES: dict[str, FieldType] = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "string": "str",
    "boolean": "bool",
}


class MlflowModel:
    """What modelport needs from one MLflow model folder."""

    def __init__(self, folder: Path, runtime: str, artifact: str, card: ModelCard) -> None:
        self.folder = folder
        self.runtime = runtime
        self.artifact = artifact
        self.card = card

    @property
    def path(self) -> Path:
        return self.folder / self.artifact


def _flavor(flavors: dict[str, Any], folder: Path) -> tuple[str, str]:
    """The runtime and the file (relative to the folder) of the first flavor modelport reads."""
    if "onnx" in flavors:
        return "onnx", str(flavors["onnx"]["data"])
    if "xgboost" in flavors:
        return "xgboost", str(flavors["xgboost"]["data"])
    if "lightgbm" in flavors:
        data = str(flavors["lightgbm"]["data"])
        return ("lightgbm" if data.endswith((".lgb", ".txt")) else "sklearn"), data
    if "sklearn" in flavors:
        return "sklearn", str(flavors["sklearn"]["pickled_model"])
    if "pytorch" in flavors:
        program = f"{flavors['pytorch'].get('model_data', 'data')}/model.pt2"
        if (folder / program).is_file():  # MLflow 3 writes torch.export programs by default
            return "torch", program
        return PYFUNC, "MLmodel"  # a pickled nn.Module: only MLflow's loader reads it
    if "transformers" in flavors:
        return "transformers", "model"
    if "python_function" in flavors:
        return PYFUNC, "MLmodel"
    raise ConfigError(f"no flavor modelport can serve: {', '.join(sorted(flavors)) or 'none'}")


def _examples(folder: Path, info: dict[str, Any] | None) -> dict[str, Any]:
    """The first row of the saved input example, by column name."""
    if not info or not info.get("artifact_path"):
        return {}
    try:
        raw = json.loads((folder / str(info["artifact_path"])).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(raw, dict) and "columns" in raw and raw.get("data"):
        return dict(zip(raw["columns"], raw["data"][0], strict=False))
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return dict(raw[0])
    if isinstance(raw, dict):
        return {k: v[0] if isinstance(v, list) and v else v for k, v in raw.items()}
    return {}


def _example(value: Any, kind: FieldType) -> Any:
    if value is None or isinstance(value, list | dict):
        return None
    try:
        return {"float": float, "int": int, "str": str, "bool": bool}[kind](value)
    except (TypeError, ValueError):
        return None


def _inputs(signature: dict[str, Any], examples: dict[str, Any]) -> list[FieldSpec] | None:
    """Named, typed columns of the MLflow signature; ``None`` for a tensor signature."""
    raw = signature.get("inputs")
    columns = json.loads(raw) if isinstance(raw, str) else raw
    if not columns or any(c.get("type") == "tensor" or "name" not in c for c in columns):
        return None
    fields = []
    for column in columns:
        kind = _TYPES.get(str(column.get("type")))
        if kind is None:
            raise ConfigError(
                f"input {column['name']!r} has MLflow type {column.get('type')!r}; modelport "
                f"serves {', '.join(sorted(_TYPES))}"
            )
        fields.append(
            FieldSpec(
                name=str(column["name"]),
                type=kind,
                required=bool(column.get("required", True)),
                example=_example(examples.get(column["name"]), kind),
            )
        )
    return fields


def _output(signature: dict[str, Any]) -> OutputSpec | None:
    """What one output column or tensor of type string (or bool) means: labels, without known
    classes; a number: a value. ``None`` when the signature does not say."""
    raw = signature.get("outputs")
    columns = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(columns, list) or len(columns) != 1 or not isinstance(columns[0], dict):
        return None
    column = columns[0]
    kind = column.get("tensor-spec", {}).get("dtype") if column.get("type") == "tensor" else None
    kind = str(kind or column.get("type"))
    if kind in ("string", "str", "object", "bool", "boolean"):
        return OutputSpec(kind="classification", probabilities=False)
    if kind in ("double", "float", "float32", "float64", "integer", "long", "int32", "int64"):
        return OutputSpec(kind="regression", probabilities=False)
    return None


def _image(signature: dict[str, Any]) -> CardSignature | None:
    """One tensor ``[-1, C, H, W]``: an image input of that shape (the torch runtime's)."""
    raw = signature.get("inputs")
    columns = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(columns, list) or len(columns) != 1 or not isinstance(columns[0], dict):
        return None
    if columns[0].get("type") != "tensor":
        return None
    shape = columns[0].get("tensor-spec", {}).get("shape", [])
    if len(shape) != 4 or any(not isinstance(n, int) or n < 1 for n in shape[1:]):
        return None
    return CardSignature(input="image", shape=(shape[1], shape[2], shape[3]))


def _signature(folder: Path, meta: dict[str, Any], runtime: str) -> CardSignature | None:
    """The card signature MLflow's signature gives; a malformed one (registry content is
    untrusted input) fails this model with the reason, never the caller."""
    signature = meta.get("signature") or {}
    try:
        if not isinstance(signature, dict):
            raise TypeError(f"a {type(signature).__name__}, not a mapping")
        inputs = _inputs(signature, _examples(folder, meta.get("saved_input_example_info")))
        generated = CardSignature(inputs=inputs) if inputs else _image(signature)
        if generated is not None and runtime == PYFUNC:  # MLflow's loader: the model cannot tell
            generated = generated.model_copy(update={"output": _output(signature)})
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ConfigError(f"{folder}/MLmodel: its signature does not read ({exc})") from exc
    return generated


def flavors_of(folder: Path) -> dict[str, Any]:
    """The flavors an MLflow model folder's ``MLmodel`` names (none when unreadable)."""
    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    return flavors if isinstance(flavors, dict) else {}


def read_mlmodel(folder: Path, source: str, card: ModelCard | None = None) -> MlflowModel:
    """Read ``folder/MLmodel``; ``card`` (a repository's card naming this source) wins over what
    the signature says, key by key."""
    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{folder}: not an MLflow model (MLmodel unreadable: {exc})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("flavors"), dict):
        raise ConfigError(f"{folder}/MLmodel: no flavors")
    runtime, artifact = _flavor(meta["flavors"], folder)
    generated = _signature(folder, meta, runtime)
    base = card or ModelCard()
    updates: dict[str, Any] = {"source": source, "runtime": base.runtime or runtime}
    updates["artifact"] = base.artifact or artifact
    if base.signature is None:
        updates["signature"] = generated
    if base.description is None:
        updates["description"] = f"{source} (MLflow {meta.get('mlflow_version', '?')})"
    return MlflowModel(
        folder, updates["runtime"], updates["artifact"], base.model_copy(update=updates)
    )
