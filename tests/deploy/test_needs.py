"""What a repository's model files need installed, read without unpickling them."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from modelport.core.repository import scan
from modelport.deploy.needs import needs, pickle_modules
from modelport.model.integrity import write_sha256


def frame_pipeline() -> Any:
    frame = pd.DataFrame({"city": ["a", "b", "c"] * 10, "amount": np.arange(30.0)})
    columns = make_column_transformer((OneHotEncoder(), ["city"]), (StandardScaler(), ["amount"]))
    return make_pipeline(columns, LogisticRegression()).fit(frame, [0, 1, 1] * 10)


@pytest.mark.parametrize(
    "dump",
    [
        lambda m, p: joblib.dump(m, p),
        lambda m, p: joblib.dump(m, p, compress=3),
        lambda m, p: joblib.dump(m, p, compress=("xz", 3)),
        lambda m, p: p.write_bytes(pickle.dumps(m, protocol=2)),
        lambda m, p: p.write_bytes(pickle.dumps(m, protocol=5)),
    ],
    ids=["joblib", "zlib", "xz", "pickle2", "pickle5"],
)
def test_pickle_modules_reads_every_class_without_loading(tmp_path: Path, dump: Any) -> None:
    path = tmp_path / "m.joblib"
    dump({"arrays": np.random.default_rng(0).random(50_000), "model": frame_pipeline()}, path)
    found = pickle_modules(path)
    assert "sklearn.compose._column_transformer" in found
    assert "sklearn.linear_model._logistic" in found  # after joblib's raw array bytes too
    assert all(m.replace("_", "a").replace(".", "").isalnum() for m in found)


def test_needs_maps_modules_to_extras_and_pinned_packages(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    for name, model in {
        "basket": frame_pipeline(),
        "trees": XGBClassifier(n_estimators=2).fit(np.random.rand(20, 3), [0, 1] * 10),
    }.items():
        path = repo / name / "1" / "model.joblib"
        path.parent.mkdir(parents=True)
        joblib.dump(model, path)
        write_sha256(path)
    found = needs(scan(repo))
    assert found.extras == {"pandas", "xgboost"}
    assert found.packages["pandas"] == f"pandas=={pd.__version__}"  # a ColumnTransformer needs it
    assert found.packages["scikit-learn"].startswith("scikit-learn==")
    assert found.unknown == {}


def test_a_module_no_package_provides_is_reported(tmp_path: Path) -> None:
    (tmp_path / "acme_local.py").write_text("class Thing:\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import acme_local

        path = tmp_path / "models" / "odd" / "1" / "model.pkl"
        path.parent.mkdir(parents=True)
        path.write_bytes(pickle.dumps(acme_local.Thing()))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_local", None)
    assert needs(scan(tmp_path / "models")).unknown == {"acme_local": {"odd"}}


def test_skops_types_are_read(tmp_path: Path) -> None:
    from skops.io import dump

    path = tmp_path / "models" / "basket" / "1" / "model.skops"
    path.parent.mkdir(parents=True)
    dump(frame_pipeline(), path)
    found = needs(scan(tmp_path / "models"))
    assert "pandas" in found.extras or found.packages.get("scikit-learn")
