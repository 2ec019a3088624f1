"""`modelport convert --to onnx` for XGBoost and LightGBM boosters (onnxmltools)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
import yaml
from fastapi.testclient import TestClient
from sklearn.datasets import load_diabetes

from modelport.cli.convert import convert_to_onnx
from modelport.cli.examples import train_example
from modelport.core.repository import scan
from modelport.errors import MissingExtra
from modelport.server.app import create_app
from modelport.settings import Settings
from tests.helpers import IRIS_ROW


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("convert") / "models"
    for framework in ("xgboost", "lightgbm"):
        train_example("iris", path, framework=framework)
        convert_to_onnx(path, f"iris-{framework}", None, [])
    x, y = load_diabetes(return_X_y=True)
    for name, file in [("xgb-diabetes", "model.ubj"), ("lgb-diabetes", "model.txt")]:
        (path / name / "1").mkdir(parents=True)
        target = str(path / name / "1" / file)
        if name.startswith("xgb"):
            xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=y), 5).save_model(target)
        else:
            params = {"objective": "regression", "num_leaves": 4, "verbose": -1}
            lgb.train(params, lgb.Dataset(x, label=y), 5).save_model(target)
    return path


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_a_booster_converts_with_parity(repo: Path, framework: str) -> None:
    folder = repo / f"iris-{framework}" / "1"
    report = json.loads((folder / "parity.json").read_text())
    assert report["passed"] is True
    assert report["agreement"] == 1.0
    assert report["max_abs_diff"] <= 1e-4
    assert report["rows"] == 501
    assert (folder / "model.onnx.sha256").is_file()


@pytest.mark.parametrize("name", ["xgb-diabetes", "lgb-diabetes"])
def test_regressors_convert_too(repo: Path, name: str) -> None:
    assert convert_to_onnx(repo, name, None, []).passed
    # without a card the original keeps serving: the twin only with `runtime: auto`
    [source] = scan(repo / name)
    assert source.problems == {}
    assert source.versions[1].suffix in (".ubj", ".txt")


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_runtime_auto_serves_the_twin(repo: Path, framework: str) -> None:
    card = repo / f"iris-{framework}" / "modelport.yaml"
    original = card.read_text()
    with TestClient(create_app(Settings(models=repo))) as client:
        native = client.post(f"/models/iris-{framework}/predict", json=IRIS_ROW).json()
    card.write_text(yaml.safe_dump({**yaml.safe_load(original), "runtime": "auto"}))
    try:
        with TestClient(create_app(Settings(models=repo))) as client:
            info = client.get(f"/models/iris-{framework}").json()
            assert info["versions"][0]["runtime"] == "onnx"
            twin = client.post(f"/models/iris-{framework}/predict", json=IRIS_ROW).json()
    finally:
        card.write_text(original)
    assert twin["prediction"] == native["prediction"] == "setosa"
    assert np.abs(np.subtract(twin["probabilities"], native["probabilities"])).max() <= 1e-4


def test_no_onnxmltools_is_a_hint(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxmltools", None)
    with pytest.raises(MissingExtra, match=r"needs onnxmltools: pip install 'modelport\[onnx\]'"):
        convert_to_onnx(repo, "iris-xgboost", None, [])
