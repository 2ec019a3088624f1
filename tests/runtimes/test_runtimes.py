from __future__ import annotations

import builtins
from fractions import Fraction
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from modelport import runtimes
from modelport.errors import ConfigError, MissingExtra, ModelLoadError, UntrustedArtifact
from modelport.model.card import ModelCard
from modelport.model.integrity import pin_artifact
from modelport.model.pins import Pins
from modelport.runtimes import LoadContext, available_runtimes, get_runtime, runtime_for_file
from modelport.runtimes.sklearn import SklearnRuntime

X, Y = load_iris(return_X_y=True)


def pins_of(path: Path) -> Pins:
    """The trusted pins of a test's model file: a lock in its folder."""
    return Pins.for_path(path.parent, path.parent / "pins.lock")


def save(model: Any, path: Path, pin: bool = True) -> Path:
    joblib.dump(model, path)
    if pin:
        pin_artifact(path, pins_of(path))
    return path


def load(path: Path, trusted: bool = False) -> tuple[SklearnRuntime, Any]:
    runtime = SklearnRuntime()
    facts = runtime.load(LoadContext(path, ModelCard(), trusted, pins_of(path)))
    return runtime, facts


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=10, random_state=0),
        CalibratedClassifierCV(SVC(), ensemble=False),
        make_pipeline(StandardScaler(), LogisticRegression()),
    ],
    ids=["logistic", "forest", "calibrated-svc", "pipeline"],
)
def test_classifier_parity_with_sklearn(tmp_path: Path, estimator: Any) -> None:
    model = estimator.fit(X, Y)
    runtime, facts = load(save(model, tmp_path / "m.joblib"))
    assert facts.n_features == 4
    assert facts.classes == [0, 1, 2]
    assert facts.kind == "classification"
    assert facts.has_probabilities
    outputs = runtime.predict(X)
    np.testing.assert_array_equal(outputs.predictions, model.predict(X))
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(X))


def test_regressor(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x, y)
    runtime, facts = load(save(model, tmp_path / "r.pkl"))
    assert facts.kind == "regression"
    assert facts.classes is None
    assert not facts.has_probabilities
    outputs = runtime.predict(x[:5])
    assert outputs.probabilities is None
    np.testing.assert_allclose(outputs.predictions, model.predict(x[:5]))


def test_feature_names_from_a_dataframe(tmp_path: Path) -> None:
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = LogisticRegression(max_iter=500).fit(frame, np.array(["a", "b", "c"])[Y])
    runtime, facts = load(save(model, tmp_path / "m.joblib"))
    assert facts.feature_names == ["sl", "sw", "pl", "pw"]
    assert facts.classes == ["a", "b", "c"]
    assert list(runtime.predict(X[:3]).predictions) == list(model.predict(frame[:3]))


def test_unpinned_pickle_is_refused_unless_trusted(tmp_path: Path) -> None:
    path = save(LogisticRegression(max_iter=1000).fit(X, Y), tmp_path / "m.pkl", pin=False)
    with pytest.raises(UntrustedArtifact, match="no trusted pin vouches for it"):
        load(path)
    runtime, _ = load(path, trusted=True)
    assert runtime.model is not None


def test_skops_checks_types(tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    sio.dump(LogisticRegression(max_iter=500).fit(X, Y), path)
    runtime, facts = load(path)  # only default-trusted types: loads without --trust
    assert facts.n_features == 4
    assert runtime.predict(X[:1]).predictions.tolist() == [0]


def test_skops_with_untrusted_types_is_refused_unless_trusted(tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    model = LogisticRegression(max_iter=500).fit(X, Y)
    model.note = Fraction(1, 3)  # a type skops does not trust by default
    sio.dump(model, path)
    with pytest.raises(UntrustedArtifact, match="types skops does not trust"):
        load(path)
    assert load(path, trusted=True)[1].n_features == 4


def test_corrupt_file_is_a_clear_load_error(tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    path.write_bytes(b"\x00not a pickle")
    pin_artifact(path, pins_of(path))
    with pytest.raises(ModelLoadError, match=r"not a readable joblib/pickle file \(\w+Error: "):
        load(path)


def test_object_without_predict_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="dict has no predict method"):
        load(save({"not": "a model"}, tmp_path / "m.joblib"))


def test_runtime_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"sklearn", "fake"} <= set(available_runtimes())
    assert get_runtime("sklearn") is SklearnRuntime
    assert runtime_for_file(Path("a.JOBLIB")) == "sklearn"
    assert runtime_for_file(Path("a.xyz")) is None
    installed = runtimes._entry_points()
    monkeypatch.setattr(  # as if modelport[torch] were not installed
        runtimes, "_entry_points", lambda: {k: v for k, v in installed.items() if k != "torch"}
    )
    with pytest.raises(MissingExtra, match=r"pip install 'modelport\[torch\]'"):
        get_runtime("torch")
    with pytest.raises(ConfigError, match=r"installed runtimes: .*sklearn"):
        get_runtime("caffe")


def _shop_model(handle_unknown: str) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(
        {"color": ["red", "blue", "green", "red"] * 10, "size": np.arange(40.0) % 7}
    )
    encode = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown=handle_unknown), ["color"]),
            ("num", StandardScaler(), ["size"]),
        ]
    )
    target = (frame["color"] == "red").to_numpy().astype(int)
    return make_pipeline(encode, LogisticRegression()).fit(frame, target)


def test_text_categories_come_from_the_encoder(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from modelport.cli.importer import import_model
    from modelport.server.app import create_app
    from modelport.settings import Settings

    raw = tmp_path / "shop.joblib"
    joblib.dump(_shop_model("error"), raw)
    import_model(raw, tmp_path / "repo", "shop")  # no card: the signature is the model's own
    with TestClient(create_app(Settings(models=tmp_path / "repo"))) as client:
        inputs = client.get("/models/shop").json()["signature"]["inputs"]
        choices = ["blue", "green", "red"]
        assert inputs[0] == {"name": "color", "type": "str", "choices": choices, "required": True}
        assert inputs[1] == {"name": "size", "type": "float", "required": True}
        assert client.post("/predict", json={"color": "red", "size": 3}).json()["prediction"] == 1
        wrong = client.post("/predict", json={"color": "pink", "size": 3})
        assert wrong.status_code == 422
        assert "'blue', 'green' or 'red'" in wrong.json()["error"]
        v2 = client.post(
            "/v2/models/shop/infer",
            json={
                "inputs": [
                    {"name": "color", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]},
                    {"name": "size", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                ]
            },
        )
        assert v2.json()["outputs"][0]["data"] == [1, 0]


def test_encoders_that_ignore_unknowns_take_any_text(tmp_path: Path) -> None:
    runtime, facts = load(save(_shop_model("ignore"), tmp_path / "m.joblib"))
    assert facts.field_types == {"color": "str"}
    assert facts.field_choices == {}
    rows = np.array([["pink", 1.0]], dtype=object)
    assert runtime.predict(rows).predictions.tolist() == [0]


def test_a_model_selecting_columns_by_name_names_the_pandas_extra_when_pandas_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas is an extra: the README promises this load error, with the command to run."""
    import modelport.runtimes.sklearn as sklearn_runtime

    path = save(_shop_model("ignore"), tmp_path / "m.joblib")
    real_find_spec = sklearn_runtime.find_spec
    monkeypatch.setattr(
        sklearn_runtime,
        "find_spec",
        lambda name, *a: None if name == "pandas" else real_find_spec(name, *a),
    )
    with pytest.raises(MissingExtra, match=r"selects its columns by name.*'modelport\[pandas\]'"):
        load(path)
    monkeypatch.undo()
    assert load(path)[1].field_types == {"color": "str"}  # with pandas it loads


def test_a_dataframe_model_still_predicts_without_pandas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = LogisticRegression(max_iter=500).fit(frame, Y)
    runtime, _ = load(save(model, tmp_path / "m.joblib"))
    real_import = builtins.__import__

    def no_pandas_for_the_runtime(name: str, globals: Any = None, *args: Any) -> Any:
        if name == "pandas" and (globals or {}).get("__name__") == "modelport.runtimes.sklearn":
            raise ImportError(name)
        return real_import(name, globals, *args)

    monkeypatch.setattr(builtins, "__import__", no_pandas_for_the_runtime)
    # warnings are errors in this suite: sklearn's "no valid feature names" must be silenced
    assert runtime.predict(X[:3]).predictions.tolist() == model.predict(frame[:3]).tolist()
