"""The XGBoost and LightGBM runtimes: native files and scikit-learn-API pickles, served."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
import yaml
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from modelport.cli.examples import train_example
from modelport.cli.importer import import_model
from modelport.core.registry import Registry
from modelport.core.repository import scan
from modelport.errors import MissingExtra, ModelLoadError, ModelNotReady
from modelport.model.card import ModelCard
from modelport.runtimes import LoadContext, runtime_for_file
from modelport.runtimes.lightgbm import LightGBMRuntime
from modelport.runtimes.xgboost import XGBoostRuntime
from modelport.server.app import create_app
from modelport.settings import Settings
from tests.helpers import IRIS_ROW

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
NAMES = list(IRIS_ROW)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
SPECIES = ["setosa", "virginica", "versicolor"]
NATIVE = ["iris-xgboost", "iris-lightgbm"]


def _version(repo: Path, name: str, file: str, data: bytes, runtime: str | None = None) -> Path:
    folder = repo / name / "1"
    folder.mkdir(parents=True)
    (folder / file).write_bytes(data)
    if runtime:
        (repo / name / "modelport.yaml").write_text(yaml.safe_dump({"runtime": runtime}))
    return folder / file


def _regressors(repo: Path) -> None:
    """Diabetes regressors without feature names, and breast-cancer binary classifiers."""
    x, y = load_diabetes(return_X_y=True)
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=y), 5)
    path = _version(repo, "xgb-diabetes", "model.ubj", b"")
    booster.save_model(str(path))
    lgb_params = {"objective": "regression", "num_leaves": 4, "verbose": -1, "num_threads": 1}
    model = lgb.train(lgb_params, lgb.Dataset(x, label=y), 5)
    model.save_model(str(_version(repo, "lgb-diabetes", "model.txt", b"")))
    xc, yc = load_breast_cancer(return_X_y=True)
    binary = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(xc, yc), 5)
    binary.save_model(str(_version(repo, "xgb-cancer", "model.json", b"")))
    lgb_params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1}
    model = lgb.train(lgb_params, lgb.Dataset(xc, label=yc), 5)
    model.save_model(str(_version(repo, "lgb-cancer", "model.txt", b"")))


def _pickles(repo: Path, tmp: Path) -> None:
    """scikit-learn-API models pickled with joblib and imported (which pins their hash)."""
    for name, model in [
        ("xgb-pickle", xgb.XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1)),
        ("lgb-pickle", lgb.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1)),
    ]:
        joblib.dump(model.fit(X_IRIS, Y_IRIS), tmp / f"{name}.joblib")
        import_model(tmp / f"{name}.joblib", repo, name)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("trees")
    repo = tmp / "models"
    for framework in ("sklearn", "xgboost", "lightgbm"):
        train_example("iris", repo, framework=framework)
    _regressors(repo)
    _pickles(repo, tmp)
    _version(repo, "bad-xgboost", "model.json", b'{"learner": {"oops"')
    _version(repo, "bad-lightgbm", "model.txt", b"version=v4\ngarbage\n", runtime="lightgbm")
    return repo


@pytest.fixture(scope="module")
def client(trees: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models=trees)), raise_server_exceptions=False) as c:
        yield c


def _own_proba(repo: Path, name: str, x: np.ndarray) -> np.ndarray:
    """The framework's own probabilities for a native model file."""
    if name == "iris-xgboost":
        booster = xgb.Booster(model_file=str(repo / name / "1" / "model.json"))
        return np.asarray(booster.predict(xgb.DMatrix(x, feature_names=NAMES)))
    return np.asarray(lgb.Booster(model_file=str(repo / name / "1" / "model.txt")).predict(x))


def test_native_files_are_found_by_suffix_and_header(tmp_path: Path, trees: Path) -> None:
    assert runtime_for_file(trees / "iris-xgboost" / "1" / "model.json") == "xgboost"
    assert runtime_for_file(trees / "xgb-diabetes" / "1" / "model.ubj") == "xgboost"
    assert runtime_for_file(trees / "iris-lightgbm" / "1" / "model.txt") == "lightgbm"
    # other .json and .txt files are not models: parity reports, notes, a transformers config
    (tmp_path / "notes.txt").write_text("trained on Tuesday\n")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    assert runtime_for_file(tmp_path / "notes.txt") is None
    assert runtime_for_file(tmp_path / "config.json") is None
    (tmp_path / "pretty.json").write_text('{\n  "learner": {}\n}')  # re-indented by a person
    assert runtime_for_file(tmp_path / "pretty.json") == "xgboost"
    (tmp_path / "tree.txt").write_text("tree houses of the world\n")
    assert runtime_for_file(tmp_path / "tree.txt") is None
    shutil_copy = (trees / "iris-lightgbm" / "1" / "model.txt").read_bytes()
    model = _version(tmp_path / "repo", "m", "model.txt", shutil_copy)
    (model.parent / "README.txt").write_text("notes")
    (model.parent / "labels.json").write_text('["a"]')
    [source] = scan(tmp_path / "repo")
    assert source.versions == {1: model}
    assert source.problems == {}


def test_the_cards_runtime_picks_a_file_its_header_does_not_name(trees: Path) -> None:
    assert runtime_for_file(trees / "bad-lightgbm" / "1" / "model.txt") is None
    [source] = scan(trees / "bad-lightgbm")
    assert source.versions[1].name == "model.txt"
    assert source.problems == {}


@pytest.mark.parametrize("name", NATIVE)
def test_signature_comes_from_the_booster(client: TestClient, name: str) -> None:
    info = client.get(f"/models/{name}").json()
    assert info["ready"] is True
    assert info["versions"][0]["runtime"] == name.split("-")[1]
    assert [f["name"] for f in info["signature"]["inputs"]] == NAMES
    assert info["signature"]["output"]["class_names"] == ["setosa", "versicolor", "virginica"]
    assert info["signature"]["classes"] == [0, 1, 2]
    metadata = client.get(f"/v2/models/{name}").json()
    assert metadata["platform"] == name.split("-")[1]


@pytest.mark.parametrize(
    ("runtime", "file", "width", "classes", "names"),
    [
        (XGBoostRuntime, "iris-xgboost/1/model.json", 4, [0, 1, 2], NAMES),
        (XGBoostRuntime, "xgb-diabetes/1/model.ubj", 10, None, None),
        (XGBoostRuntime, "xgb-cancer/1/model.json", 30, [0, 1], None),
        (LightGBMRuntime, "iris-lightgbm/1/model.txt", 4, [0, 1, 2], NAMES),
        (LightGBMRuntime, "lgb-diabetes/1/model.txt", 10, None, None),
        (LightGBMRuntime, "lgb-cancer/1/model.txt", 30, [0, 1], None),
    ],
)
def test_facts_for_each_objective(
    trees: Path, runtime: Any, file: str, width: int, classes: Any, names: Any
) -> None:
    facts = runtime().load(LoadContext(trees / file, ModelCard(), trusted=False))
    assert facts.kind == ("regression" if classes is None else "classification")
    assert facts.classes == classes
    assert facts.feature_names == names
    assert facts.has_probabilities == (classes is not None)
    assert facts.n_features == width


@pytest.mark.parametrize("name", NATIVE)
def test_tutorial_predict_matches_the_framework(trees: Path, client: TestClient, name: str) -> None:
    own = _own_proba(trees, name, np.asarray(ROWS))
    for row, species, proba in zip(ROWS, SPECIES, own, strict=True):
        answer = client.post(f"/models/{name}/predict", json=dict(zip(NAMES, row, strict=True)))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["prediction"] == species
        assert body["probabilities"] == [round(float(p), 4) for p in proba]
    batch = client.post(f"/models/{name}/predict/batch", json={"instances": [IRIS_ROW] * 3})
    assert [a["prediction"] for a in batch.json()["predictions"]] == ["setosa"] * 3


@pytest.mark.parametrize("name", NATIVE)
def test_v1_and_v2_batches_match_the_framework(trees: Path, client: TestClient, name: str) -> None:
    x = X_IRIS[::5]  # 30 rows, all three species
    v1 = client.post(f"/v1/models/{name}:predict", json={"instances": x.tolist()})
    labels = ["setosa", "versicolor", "virginica"]
    own = _own_proba(trees, name, x)
    assert v1.json()["predictions"] == [labels[i] for i in own.argmax(axis=1)]
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}
    v2 = client.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]}).json()
    outputs = {o["name"]: o for o in v2["outputs"]}
    assert outputs["predict_proba"]["shape"] == [30, 3]
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(30, 3)
    assert np.abs(proba - own).max() <= 1e-6
    assert (own.argmax(axis=1) == Y_IRIS[::5]).mean() >= 0.9


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("xgb-diabetes", lambda b, x: b.predict(xgb.DMatrix(x))),
        ("lgb-diabetes", lambda b, x: b.predict(x)),
        ("xgb-cancer", lambda b, x: b.predict(xgb.DMatrix(x))),
        ("lgb-cancer", lambda b, x: b.predict(x)),
    ],
)
def test_regressors_and_binary_classifiers(
    trees: Path, client: TestClient, name: str, own: Any
) -> None:
    x = (load_diabetes() if "diabetes" in name else load_breast_cancer()).data[:8]
    [path] = [p for p in (trees / name / "1").iterdir() if not p.name.endswith(".sha256")]
    booster = (xgb.Booster if name.startswith("xgb") else lgb.Booster)(model_file=str(path))
    expected = np.asarray(own(booster, x))
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP64", "data": x.tolist()}
    answer = client.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: np.asarray(o["data"]) for o in answer.json()["outputs"]}
    if "diabetes" in name:  # XGBoost predicts in float32
        assert np.allclose(outputs["predict"].astype(float), expected, rtol=1e-5)
        assert "predict_proba" not in outputs
    else:
        assert np.allclose(outputs["predict_proba"].reshape(8, 2)[:, 1], expected, atol=1e-6)
        assert outputs["predict"].astype(int).tolist() == (expected > 0.5).astype(int).tolist()


@pytest.mark.parametrize("name", ["xgb-pickle", "lgb-pickle"])
def test_sklearn_api_pickles_serve_through_the_trusted_path(
    trees: Path, client: TestClient, name: str
) -> None:
    assert client.get(f"/models/{name}").json()["versions"][0]["runtime"] == "sklearn"
    model = joblib.load(trees / name / "1" / "model.joblib")
    answer = client.post(f"/v1/models/{name}:predict", json={"instances": ROWS})
    assert answer.json()["predictions"] == model.predict(np.asarray(ROWS)).tolist()
    body = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": ROWS}]}
    v2 = client.post(f"/v2/models/{name}/infer", json=body).json()
    proba = {o["name"]: o["data"] for o in v2["outputs"]}["predict_proba"]
    expected = model.predict_proba(np.asarray(ROWS))
    assert np.abs(np.asarray(proba).reshape(3, 3) - expected).max() <= 1e-6


def test_an_unpinned_pickle_is_refused(trees: Path, tmp_path: Path) -> None:
    path = _version(tmp_path, "loose", "model.joblib", b"")
    joblib.dump(xgb.XGBClassifier(n_estimators=2).fit(X_IRIS, Y_IRIS), path)
    registry = Registry(scan(tmp_path))
    registry.load_all()
    with pytest.raises(ModelNotReady, match="no trusted pin vouches for it"):
        registry.get("loose")


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize(
    ("route", "body", "status", "says"),
    [
        ("predict", {**IRIS_ROW, "petal_width": "wide"}, 422, "petal_width"),
        ("predict", {"text": "a lovely flower"}, 422, "sepal_length"),
        ("v1", {"instances": [[5.1, 3.5, 1.4]]}, 400, "a row of 4 values"),
        ("v1", {"instances": [["a", "b", "c", "d"]]}, 400, "valid number, got 'a'"),
        ("v1", {"instances": ["a lovely flower"]}, 400, "a row of 4 values"),
        ("v2", [{"shape": [1, 3], "datatype": "FP32", "data": [5.1, 3.5, 1.4]}], 400, "rows of 4"),
        ("v2", [{"shape": [1, 4], "datatype": "BYTES", "data": list("abcd")}], 400, "got 'a'"),
        ("v2", [{"shape": [1], "datatype": "BYTES", "data": ["a lovely flower"]}], 400, ", 4]"),
    ],
)
def test_bad_input_is_a_precise_4xx(
    client: TestClient, name: str, route: str, body: Any, status: int, says: str
) -> None:
    if route == "predict":
        answer = client.post(f"/models/{name}/predict", json=body)
    elif route == "v1":
        answer = client.post(f"/v1/models/{name}:predict", json=body)
    else:
        answer = client.post(
            f"/v2/models/{name}/infer", json={"inputs": [{"name": "input", **body[0]}]}
        )
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert "error" in answer.json()
    assert client.post(f"/models/{name}/predict", json=IRIS_ROW).status_code == 200


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("bad-xgboost", "XGBoost cannot load it as a model: "),
        ("bad-lightgbm", "LightGBM cannot load it as a model: "),
    ],
)
def test_a_corrupt_file_fails_at_load_and_the_rest_serve(
    client: TestClient, name: str, says: str
) -> None:
    version = client.get(f"/models/{name}").json()["versions"][0]
    assert version["state"] == "failed"
    assert says in version["error"]
    assert "\n" not in version["error"]
    assert not version["error"].startswith("[")
    assert client.get(f"/v2/models/{name}/ready").status_code == 503
    assert client.post(f"/models/{name}/predict", json=IRIS_ROW).status_code == 503
    for other in ("iris", *NATIVE):
        assert client.post(f"/models/{other}/predict", json=IRIS_ROW).status_code == 200


def test_corrupt_files_raise_model_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.ubj"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="XGBoost cannot load it"):
        XGBoostRuntime().load(LoadContext(bad, ModelCard(), trusted=False))
    bad = tmp_path / "model.txt"
    bad.write_text("hello")
    with pytest.raises(ModelLoadError, match="LightGBM cannot load it"):
        LightGBMRuntime().load(LoadContext(bad, ModelCard(), trusted=False))


@pytest.mark.parametrize("package", ["xgboost", "lightgbm"])
def test_a_missing_extra_is_a_one_line_hint(
    trees: Path, monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # what `import` meets when not installed
    short = {"xgboost": "xgb", "lightgbm": "lgb"}[package]
    registry = Registry(
        [s for s in scan(trees) if s.name in (f"iris-{package}", f"{short}-pickle", "iris")]
    )
    registry.load_all()
    hint = f"pip install 'modelport[{package}]'"
    for name in (f"iris-{package}", f"{short}-pickle"):
        with pytest.raises(ModelNotReady) as caught:
            registry.get(name)
        assert hint in caught.value.message
        assert "\n" not in caught.value.message
    assert registry.get("iris").name == "iris"
    with pytest.raises(MissingExtra, match=rf"pip install 'modelport\[{package}\]'"):
        train_example("iris", trees.parent / "other", framework=package)


def test_examples_cli_without_the_extra_prints_the_hint(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['lightgbm'] = None; from modelport.cli.main import main; "
        f"main(['examples', 'train', 'iris', '--framework', 'lightgbm', '--repo', '{tmp_path}'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "pip install 'modelport[lightgbm]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_examples_train_every_iris_framework(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    written = {fw: train_example("iris", repo, framework=fw) for fw in ("onnx", "xgboost")}
    assert written["onnx"] == repo / "iris-onnx" / "1" / "model.onnx"
    assert written["xgboost"] == repo / "iris-xgboost" / "1" / "model.json"
    assert (repo / "iris-onnx" / "1" / "model.onnx.sha256").is_file()
    assert yaml.safe_load((repo / "iris-onnx" / "modelport.yaml").read_text())["runtime"] == "onnx"
    with TestClient(create_app(Settings(models=repo))) as client:
        for name in ("iris-onnx", "iris-xgboost"):
            answer = client.post(f"/models/{name}/predict", json=IRIS_ROW).json()
            assert answer["prediction"] == "setosa"
    again = train_example("iris", repo, framework="xgboost")
    assert again == repo / "iris-xgboost" / "1" / "model.json"  # the very same model: no v2


class _BrokenLibrary:
    """An import finder whose lightgbm fails as it does without the OpenMP runtime."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "lightgbm":
            raise OSError("libgomp.so.1: cannot open shared object file")


def test_lightgbm_without_openmp_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "lightgbm")
    monkeypatch.setattr(sys, "meta_path", [_BrokenLibrary(), *sys.meta_path])
    with pytest.raises(MissingExtra, match=r"libgomp\.so\.1.*apt-get install libgomp1"):
        LightGBMRuntime().load(LoadContext(Path("model.txt"), ModelCard(), trusted=False))
