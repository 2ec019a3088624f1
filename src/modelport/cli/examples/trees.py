"""The Iris example in other frameworks: XGBoost and LightGBM native model files, and the
scikit-learn model's ONNX twin as a plain ``.onnx`` version. Training is deterministic and
takes well under a second; each writes its model as ``iris-<framework>`` unless named.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError

__all__ = ["train_iris_lightgbm", "train_iris_onnx", "train_iris_xgboost"]


def _iris() -> tuple[Any, Any, list[str]]:
    from sklearn.datasets import load_iris

    from modelport.cli.examples.tabular import _IRIS_FIELDS

    x, y = load_iris(return_X_y=True)
    return x, y, [field for field, _, _ in _IRIS_FIELDS]


def _add(repo: Path, name: str, path: Path, runtime: str, version: int | None) -> Path:
    from modelport.cli.examples.tabular import iris_card
    from modelport.core.versions import add_version

    return add_version(repo, name, path, iris_card(runtime), version, reuse=True)


def _save_booster(
    repo: Path, name: str, booster: Any, filename: str, runtime: str, version: int | None
) -> Path:
    """Write a booster with its own ``save_model`` and add it to the repository."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        booster.save_model(str(path))
        return _add(repo, name, path, runtime, version)


def train_iris_xgboost(
    repo: Path, name: str = "iris-xgboost", estimator: str = "", version: int | None = None
) -> Path:
    """Gradient-boosted trees (``multi:softprob``, 20 rounds of depth 3) saved as XGBoost JSON;
    the booster carries the tutorial's feature names."""
    from modelport.runtimes.xgboost import _import

    xgboost = _import()
    x, y, names = _iris()
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.3}
    booster = xgboost.train(
        {**params, "nthread": 1, "seed": 0},
        xgboost.DMatrix(x, label=y, feature_names=names),
        num_boost_round=20,
    )
    return _save_booster(repo, name, booster, "model.json", "xgboost", version)


def train_iris_lightgbm(
    repo: Path, name: str = "iris-lightgbm", estimator: str = "", version: int | None = None
) -> Path:
    """Gradient-boosted trees (``multiclass``, 20 rounds, 8 leaves) saved as a LightGBM text
    model; the booster carries the tutorial's feature names."""
    from modelport.runtimes.lightgbm import _import

    lightgbm = _import()
    x, y, names = _iris()
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 8, "min_data_in_leaf": 5}
    booster = lightgbm.train(
        {**params, "num_threads": 1, "seed": 0, "deterministic": True, "verbose": -1},
        lightgbm.Dataset(x, label=y, feature_name=names),
        num_boost_round=20,
    )
    return _save_booster(repo, name, booster, "model.txt", "lightgbm", version)


def train_iris_onnx(
    repo: Path, name: str = "iris-onnx", estimator: str = "logistic", version: int | None = None
) -> Path:
    """The scikit-learn Iris model (``estimator``) converted by ``modelport convert``; written
    only when the parity check passed."""
    from modelport.cli.convert import convert_to_onnx
    from modelport.cli.examples.tabular import train_iris

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "models"
        train_iris(scratch, "iris", estimator)  # type: ignore[arg-type]
        parity = convert_to_onnx(scratch, "iris", None, [])
        if not parity.passed:
            raise ConfigError(f"the ONNX twin failed its parity check: {parity}")
        return _add(repo, name, Path(parity.twin), "onnx", version)
