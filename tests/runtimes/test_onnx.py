"""The ONNX runtime, `modelport convert` and `runtime: auto`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression

from modelport.cli.convert import convert_to_onnx, sample_rows
from modelport.cli.examples import train_example
from modelport.cli.importer import import_model
from modelport.errors import ConfigError, ModelLoadError, ModelNotFound
from modelport.model.card import ModelCard
from modelport.runtimes import LoadContext
from modelport.runtimes.onnx import OnnxRuntime
from modelport.server.app import create_app
from modelport.settings import Settings
from tests.helpers import IRIS_ROW


@pytest.fixture
def forest(tmp_path: Path) -> Path:
    repo = tmp_path / "models"
    train_example("iris", repo, estimator="forest")
    return repo


def set_runtime(repo: Path, runtime: str) -> None:
    card = repo / "iris" / "modelport.yaml"
    data = yaml.safe_load(card.read_text())
    card.write_text(yaml.safe_dump({**data, "runtime": runtime}))


def test_convert_writes_a_twin_that_agrees(forest: Path) -> None:
    parity = convert_to_onnx(forest, "iris", None, [])
    assert parity.passed
    assert parity.agreement == 1.0
    assert parity.max_abs_diff <= 1e-4
    folder = forest / "iris" / "1"
    assert json.loads((folder / "parity.json").read_text())["passed"] is True
    assert (folder / "model.onnx.sha256").is_file()
    runtime = OnnxRuntime()
    facts = runtime.load(LoadContext(folder / "model.onnx", ModelCard(), trusted=False))
    assert facts.feature_names == list(IRIS_ROW)
    assert facts.classes == [0, 1, 2]
    x, _ = load_iris(return_X_y=True)
    assert runtime.predict(x[:1]).predictions.tolist() == [0]


@pytest.mark.parametrize(("runtime", "served"), [("auto", "onnx"), ("sklearn", "sklearn")])
def test_auto_serves_the_twin_only_when_asked(forest: Path, runtime: str, served: str) -> None:
    convert_to_onnx(forest, "iris", None, [])
    set_runtime(forest, runtime)
    with TestClient(create_app(Settings(models=forest))) as client:
        assert client.get("/models/iris").json()["versions"][0]["runtime"] == served
        answer = client.post("/predict", json=IRIS_ROW).json()
        assert answer["prediction"] == "setosa"


def test_auto_keeps_the_original_when_parity_failed(forest: Path) -> None:
    convert_to_onnx(forest, "iris", None, [])
    report = forest / "iris" / "1" / "parity.json"
    report.write_text(json.dumps({**json.loads(report.read_text()), "passed": False}))
    set_runtime(forest, "auto")
    with TestClient(create_app(Settings(models=forest))) as client:
        assert client.get("/models/iris").json()["versions"][0]["runtime"] == "sklearn"


def test_regressors_convert_too(tmp_path: Path) -> None:
    import joblib

    x, y = load_diabetes(return_X_y=True)
    raw = tmp_path / "reg.joblib"
    joblib.dump(LinearRegression().fit(x, y), raw)
    import_model(raw, tmp_path / "models", "diabetes")
    parity = convert_to_onnx(tmp_path / "models", "diabetes", None, [])
    assert parity.passed


def test_sample_rows_stay_inside_the_bounds(forest: Path) -> None:
    from modelport.core.registry import Registry
    from modelport.core.repository import scan

    registry = Registry(scan(forest))
    registry.load_all()
    rows = sample_rows(registry.get("iris").signature, n=200)
    assert rows.shape == (201, 4)
    assert (rows > 0).all()
    assert (rows <= 10).all()


def test_corrupt_onnx_is_a_clear_load_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not onnx")
    with pytest.raises(ModelLoadError, match="ONNX Runtime cannot load it"):
        OnnxRuntime().load(LoadContext(path, ModelCard(), trusted=False))


def test_convert_refuses_what_it_cannot_convert(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    train_example("sentiment", repo)
    with pytest.raises(ConfigError, match="numeric inputs only"):
        convert_to_onnx(repo, "sentiment", None, [])
    assert not (repo / "sentiment" / "1" / "model.onnx").exists()


def test_convert_names_what_it_was_asked_for(forest: Path) -> None:
    """An unknown model lists the repository's models; a version that is an ONNX file already
    says so (it used to say the version did not exist)."""
    with pytest.raises(ModelNotFound, match="'nope' not found; models served here: iris"):
        convert_to_onnx(forest, "nope", None, [])
    train_example("iris", forest, estimator="forest", version=2)
    convert_to_onnx(forest, "iris", 2, [])
    (forest / "iris" / "2" / "model.joblib").unlink()
    with pytest.raises(ConfigError, match="'iris' v2 is an ONNX file"):
        convert_to_onnx(forest, "iris", 2, [])


def test_the_image_installs_onnx_runtime_for_a_twin_served_by_auto(forest: Path) -> None:
    """``runtime: auto`` serves the twin: the image's extras come from the file it serves."""
    from modelport.core.repository import scan
    from modelport.deploy.needs import needs

    assert "onnx" not in needs(scan(forest)).extras
    convert_to_onnx(forest, "iris", None, [])
    set_runtime(forest, "auto")
    assert "onnx" in needs(scan(forest)).extras
