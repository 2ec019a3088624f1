"""Nothing outside the model repository is read: links and ``../`` in cards are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelport.core.registry import ModelState, Registry
from modelport.core.repository import scan
from modelport.errors import ModelNotReady
from tests.helpers import write_fake_model


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A fake model outside the repository, and a repository beside it with one good model."""
    write_fake_model(tmp_path / "outside", "evil")
    (tmp_path / "outside" / "evil" / "modelport.yaml").write_text("{ not: [ parsed")
    write_fake_model(tmp_path / "models", "good")
    return tmp_path / "outside" / "evil"


def _registry(root: Path) -> Registry:
    registry = Registry(scan(root))
    registry.load_all()
    return registry


def test_a_model_folder_linked_outside_is_refused_and_not_read(
    tmp_path: Path, outside: Path
) -> None:
    (tmp_path / "models" / "evil").symlink_to(outside, target_is_directory=True)
    registry = _registry(tmp_path / "models")  # its unparseable card is never read
    assert registry.get("good").name == "good"
    version = registry.models["evil"].versions[1]
    assert version.state is ModelState.FAILED
    assert version.error is not None
    assert "link to outside the model repository" in version.error
    assert str(tmp_path) not in version.error  # no absolute path in the public reason


def test_a_version_folder_linked_outside_is_refused(tmp_path: Path, outside: Path) -> None:
    model = write_fake_model(tmp_path / "models", "m", versions=(1,))
    (model / "2").symlink_to(outside / "1", target_is_directory=True)
    registry = _registry(tmp_path / "models")
    assert registry.get("m", 1).version == 1
    with pytest.raises(ModelNotReady, match="m/2: the folder is a link to outside"):
        registry.get("m", 2)


def test_a_model_file_linked_outside_is_refused(tmp_path: Path, outside: Path) -> None:
    model = write_fake_model(tmp_path / "models", "m", versions=(1,))
    (model / "1" / "model.fake").unlink()
    (model / "1" / "model.fake").symlink_to(outside / "1" / "model.fake")
    (source,) = [s for s in scan(tmp_path / "models") if s.name == "m"]
    assert "model.fake is a link to outside the model repository" in source.problems[1]


def test_a_link_deep_in_a_folder_model_is_refused(tmp_path: Path, outside: Path) -> None:
    model = write_fake_model(tmp_path / "models", "m", versions=(1,))
    (model / "1" / "tokenizer").mkdir()
    (model / "1" / "tokenizer" / "vocab.txt").symlink_to(outside / "modelport.yaml")
    (source,) = [s for s in scan(tmp_path / "models") if s.name == "m"]
    assert "tokenizer/vocab.txt is a link to outside" in source.problems[1]


def test_a_card_artifact_with_dotdot_is_refused(tmp_path: Path, outside: Path) -> None:
    model = write_fake_model(tmp_path / "models", "m", versions=(1,))
    card = {"runtime": "fake", "artifact": "../../../outside/evil/1/model.fake"}
    (model / "modelport.yaml").write_text(yaml.safe_dump(card))
    registry = _registry(tmp_path / "models")
    assert registry.get("good").name == "good"
    with pytest.raises(ModelNotReady, match="lies outside the model repository"):
        registry.get("m")


def test_links_inside_the_repository_are_fine(tmp_path: Path) -> None:
    model = write_fake_model(tmp_path / "models", "m", versions=(1,))
    (model / "2").symlink_to(model / "1", target_is_directory=True)
    (tmp_path / "models" / "alias").symlink_to(model, target_is_directory=True)
    card = {"runtime": "fake", "artifact": "../1/model.fake"}  # up, but still inside
    write_fake_model(tmp_path / "models", "n", versions=(1,))
    (tmp_path / "models" / "n" / "modelport.yaml").write_text(yaml.safe_dump(card))
    sources = {s.name: s for s in scan(tmp_path / "models")}
    assert all(not s.problems for s in sources.values()), {
        n: s.problems for n, s in sources.items()
    }


def test_a_linked_repository_root_is_followed(tmp_path: Path) -> None:
    write_fake_model(tmp_path / "real", "m")
    (tmp_path / "models").symlink_to(tmp_path / "real", target_is_directory=True)
    (source,) = scan(tmp_path / "models")
    assert not source.problems


def test_onnx_external_data_outside_the_repository_is_refused(tmp_path: Path) -> None:
    """An ONNX model whose weights live outside its folder: ONNX Runtime refuses `../` in the
    location, and a link in the folder is refused by the scan."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.ones((2, 3), dtype=np.float32)
    weights.tofile(tmp_path / "outside.bin")
    tensor = numpy_helper.from_array(weights, "W")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../../outside.bin"), ("offset", "0"), ("length", "24")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    node = helper.make_node("MatMul", ["x", "W"], ["y"])
    graph = helper.make_graph([node], "g", [x], [y], [tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder = tmp_path / "models" / "m" / "1"
    folder.mkdir(parents=True)
    onnx.save(model, str(folder / "model.onnx"))
    write_fake_model(tmp_path / "models", "good")
    registry = _registry(tmp_path / "models")
    assert registry.get("good").name == "good"
    with pytest.raises(ModelNotReady, match="escapes model directory"):
        registry.get("m")
    (folder / "weights.bin").symlink_to(tmp_path / "outside.bin")
    (source,) = [s for s in scan(tmp_path / "models") if s.name == "m"]
    assert "weights.bin is a link to outside" in source.problems[1]
