"""MLmodel files (written here, as MLflow writes them) turned into runtimes, files and cards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from modelport.core.schemas import request_model
from modelport.errors import ConfigError
from modelport.model.card import ModelCard
from modelport.model.signature import FieldSpec, OutputSpec, Signature
from modelport.sources.mlmodel import PYFUNC, read_mlmodel
from modelport.sources.registry import parse_uri, registry_refusals, untrusted_refusal

COLUMNS = [
    {"type": "double", "name": "sepal_length", "required": True},
    {"type": "long", "name": "count", "required": False},
    {"type": "string", "name": "colour", "required": True},
    {"type": "boolean", "name": "wild", "required": True},
]


def _write(
    folder: Path, flavors: dict[str, Any], inputs: list[dict[str, Any]] | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"flavors": flavors, "mlflow_version": "3.17.2"}
    if inputs is not None:
        meta["signature"] = {"inputs": json.dumps(inputs), "outputs": None}
        meta["saved_input_example_info"] = {"artifact_path": "input_example.json"}
        example = {"columns": [c.get("name") for c in inputs], "data": [[5.1, 3, "red", True]]}
        (folder / "input_example.json").write_text(json.dumps(example))
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))
    return folder


@pytest.mark.parametrize(
    ("flavors", "runtime", "artifact"),
    [
        ({"onnx": {"data": "model.onnx"}, "python_function": {}}, "onnx", "model.onnx"),
        ({"xgboost": {"data": "model.ubj"}}, "xgboost", "model.ubj"),
        ({"lightgbm": {"data": "model.lgb"}}, "lightgbm", "model.lgb"),
        ({"lightgbm": {"data": "model.skops"}}, "sklearn", "model.skops"),
        ({"sklearn": {"pickled_model": "model.skops"}}, "sklearn", "model.skops"),
        ({"sklearn": {"pickled_model": "model.pkl"}}, "sklearn", "model.pkl"),
        ({"pytorch": {"model_data": "data"}}, "torch", "data/model.pt2"),
        ({"transformers": {}}, "transformers", "model"),
        ({"python_function": {"loader_module": "x"}}, PYFUNC, "MLmodel"),
    ],
)
def test_each_flavor_loads_through_a_modelport_runtime(
    tmp_path: Path, flavors: dict[str, Any], runtime: str, artifact: str
) -> None:
    if runtime == "torch":  # MLflow 3 writes a torch.export program without saying so
        (tmp_path / "data").mkdir()
        (tmp_path / artifact).write_bytes(b"")
    found = read_mlmodel(_write(tmp_path, flavors), "models:/m/1")
    assert (found.runtime, found.artifact) == (runtime, artifact)
    assert found.card.source == "models:/m/1"


def test_a_pickled_torch_module_is_left_to_mlflows_loader(tmp_path: Path) -> None:
    """Only MLflow reads a pickled nn.Module, so it needs --trust as a pyfunc does."""
    folder = _write(tmp_path, {"pytorch": {"model_data": "data"}, "python_function": {}})
    (folder / "data").mkdir()
    (folder / "data" / "model.pth").write_bytes(b"")
    found = read_mlmodel(folder, "models:/m/1")
    assert (found.runtime, found.artifact) == (PYFUNC, "MLmodel")
    refusal = untrusted_refusal(found.card, found.path, "models:/m@champion")
    assert refusal is not None
    assert "a pickled PyTorch module (model.pth)" in refusal.message
    assert "modelport serve models:/m@champion --trust models:/m" in refusal.message


def test_a_tensor_image_signature_becomes_the_image_input(tmp_path: Path) -> None:
    tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 16, 16]}}]
    found = read_mlmodel(_write(tmp_path, {"onnx": {"data": "model.onnx"}}, tensor), "s")
    assert found.card.signature is not None
    assert found.card.signature.input == "image"
    assert found.card.signature.shape == (3, 16, 16)


def test_the_signature_becomes_named_typed_optional_fields(tmp_path: Path) -> None:
    found = read_mlmodel(_write(tmp_path, {"sklearn": {"pickled_model": "m.skops"}}, COLUMNS), "s")
    inputs = found.card.signature.inputs if found.card.signature else None
    assert inputs is not None
    assert [(f.name, f.type, f.required, f.example) for f in inputs] == [
        ("sepal_length", "float", True, 5.1),
        ("count", "int", False, 3),
        ("colour", "str", True, "red"),
        ("wild", "bool", True, True),
    ]


def test_an_optional_number_may_be_left_out_and_reaches_the_model_as_nan() -> None:
    fields = [FieldSpec(name="a"), FieldSpec(name="b", required=False)]
    request = request_model("m", Signature(inputs=fields, output=OutputSpec(kind="regression")))
    record = request.model_validate({"a": 1.0})
    rows = np.asarray([[record.a, record.b]], dtype=np.float64)  # as LoadedModel.rows builds them
    assert rows[0, 0] == 1.0
    assert np.isnan(rows[0, 1])
    assert "a" in request.model_json_schema()["required"]
    assert "b" not in request.model_json_schema()["required"]


def test_a_tensor_signature_leaves_the_inputs_to_the_model(tmp_path: Path) -> None:
    tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]
    found = read_mlmodel(_write(tmp_path, {"onnx": {"data": "model.onnx"}}, tensor), "s")
    assert found.card.signature is None


def test_an_unsupported_column_type_is_named(tmp_path: Path) -> None:
    columns = [{"type": "datetime", "name": "when"}]
    with pytest.raises(ConfigError, match="'when' has MLflow type 'datetime'"):
        read_mlmodel(_write(tmp_path, {"onnx": {"data": "model.onnx"}}, columns), "s")


def test_a_repository_card_wins_key_by_key(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"sklearn": {"pickled_model": "model.skops"}}, COLUMNS)
    card = ModelCard(description="mine", strict=True, source="models:/m@champion")
    found = read_mlmodel(folder, "models:/m@champion", card)
    assert found.card.description == "mine"
    assert found.card.strict
    assert found.card.runtime == "sklearn"
    assert found.card.signature is not None


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        ("models:/iris@champion", ("iris", "champion", None)),
        ("models:/iris/3", ("iris", None, 3)),
    ],
)
def test_registry_uris(uri: str, parts: tuple[str, str | None, int | None]) -> None:
    ref = parse_uri(uri)
    assert (ref.name, ref.alias, ref.version) == parts
    assert ref.uri == uri


@pytest.mark.parametrize("uri", ["models:/iris", "models:/iris@", "models:/a/b/c", "runs:/x/y"])
def test_bad_registry_uris_say_the_two_forms(uri: str) -> None:
    with pytest.raises(ConfigError, match="models:/NAME@ALIAS or models:/NAME/VERSION"):
        parse_uri(uri)


def test_pyfunc_only_needs_trust_and_says_the_command(tmp_path: Path) -> None:
    card = ModelCard(runtime=PYFUNC, source="models:/echo@champion")
    artifact = tmp_path / "echo" / "1" / "MLmodel"
    (refusal,) = registry_refusals([(card, artifact)], [], "models:/echo@champion").values()
    assert "--trust models:/echo" in refusal.message
    assert not registry_refusals([(card, artifact)], [tmp_path / "echo"], "models:/echo@champion")


@pytest.mark.parametrize(
    "signature",
    [
        {"inputs": "{not json"},
        {"inputs": "[1]"},  # a column that is no mapping
        {"inputs": '[{"type": "string", "name": "text"}]', "outputs": "{bad"},
        "a string",
    ],
)
def test_a_malformed_signature_fails_the_model_with_the_reason(
    tmp_path: Path, signature: Any
) -> None:
    """Registry content is untrusted input: a signature that does not read is a ConfigError
    (that model fails, listed with it), never a crash of the scan or of the follower's poll."""
    folder = _write(tmp_path, {"python_function": {"loader_module": "x"}})
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    (folder / "MLmodel").write_text(yaml.safe_dump({**meta, "signature": signature}))
    with pytest.raises(ConfigError, match="signature does not read"):
        read_mlmodel(folder, "models:/x/1")
