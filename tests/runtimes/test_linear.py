"""LogisticRegression answered from its coefficients: bit for bit scikit-learn's own answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from modelport.runtimes import _linear
from modelport.runtimes._linear import Linear, _one_vs_rest, _probe, linear_of
from tests.runtimes.test_runtimes import load, save

X, Y = load_iris(return_X_y=True)
XB, YB = load_breast_cancer(return_X_y=True)
NAMES = np.array(["setosa", "versicolor", "virginica"])
# Rows inside and far outside the training ranges (probabilities of exactly 0 and 1 among them).
WIDE = np.random.default_rng(1).uniform(-200, 200, size=(2000, 4))


def _same(runtime: Any, model: Any, rows: np.ndarray) -> None:
    outputs = runtime.predict(rows)
    np.testing.assert_array_equal(outputs.probabilities, model.predict_proba(rows))
    np.testing.assert_array_equal(outputs.predictions, model.predict(rows))


def test_a_multinomial_model_answers_bit_for_bit(tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=500).fit(X, NAMES[Y])
    runtime, _ = load(save(model, tmp_path / "m.joblib"))
    assert isinstance(runtime._fast, Linear)
    assert runtime._fast.formula is _linear._softmax
    for rows in (X, WIDE, X[:1], WIDE[7:8]):
        _same(runtime, model, rows)


def test_a_binary_model_answers_bit_for_bit(tmp_path: Path) -> None:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(XB, YB)
    runtime, _ = load(save(model, tmp_path / "m.joblib"))
    assert isinstance(runtime._fast, Linear)  # the Pipeline's last step, after its scaler
    assert runtime._fast.formula is _linear._one_vs_rest
    wide = np.random.default_rng(2).normal(0, 50, size=(500, XB.shape[1]))
    for rows in (XB, wide, XB[:1]):
        _same(runtime, model, rows)


def test_the_one_vs_rest_formula_is_scikit_learns() -> None:
    """A multiclass one-vs-rest model (older scikit-learn's ``multi_class="ovr"``) normalizes
    the logistic function over the classes, as ``_predict_proba_lr`` does."""
    model = LogisticRegression(max_iter=500).fit(X, Y)
    rows = np.concatenate([_probe(model), WIDE])
    answer = _one_vs_rest(rows @ model.coef_.T + model.intercept_)
    np.testing.assert_array_equal(answer, model._predict_proba_lr(rows))
    # a row whose every class has probability 0 is left to scikit-learn
    assert _one_vs_rest(np.full((1, 3), -1e6)) is None


def test_a_model_fitted_on_a_data_frame_reads_rows_in_its_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = LogisticRegression(max_iter=500).fit(frame, Y)
    runtime, facts = load(save(model, tmp_path / "m.joblib"))
    assert facts.feature_names == ["sl", "sw", "pl", "pw"]
    assert isinstance(runtime._fast, Linear)
    outputs = runtime.predict(X)
    np.testing.assert_array_equal(outputs.probabilities, model.predict_proba(frame))


@pytest.mark.parametrize(
    "rows",
    [X[:3].astype(np.float32), X[:3].astype(np.int64), np.array([[1.0, np.nan, 2.0, 3.0]]),
     np.array([[1.0, np.inf, 2.0, 3.0]]), X[:3, :2], np.empty((0, 4)), [[1.0, 2.0, 3.0, 4.0]]],
    ids=["float32", "int", "nan", "inf", "too-few-columns", "empty", "list"],
)  # fmt: skip
def test_rows_scikit_learn_would_read_otherwise_are_left_to_it(rows: Any) -> None:
    linear = linear_of(LogisticRegression(max_iter=500).fit(X, Y))
    assert linear is not None
    assert linear(rows) is None


def test_rows_left_to_scikit_learn_get_its_answer_or_its_error(tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=500).fit(X, Y)
    runtime, _ = load(save(model, tmp_path / "m.joblib"))
    _same(runtime, model, X[:5].astype(np.float32))
    with pytest.raises(ValueError, match="NaN"):
        runtime.predict(np.array([[1.0, np.nan, 2.0, 3.0]]))


class Shifted(LogisticRegression):  # type: ignore[misc]
    """Not scikit-learn's own class: its answers are its own business."""

    def predict_proba(self, X: Any) -> Any:
        return super().predict_proba(X + 1)


def test_other_models_keep_scikit_learns_path(tmp_path: Path) -> None:
    assert linear_of(LinearSVC().fit(X, Y)) is None
    assert linear_of(Shifted(max_iter=500).fit(X, Y)) is None
    runtime, _ = load(save(Shifted(max_iter=500).fit(X, Y), tmp_path / "m.joblib"))
    assert runtime._fast is None


def test_a_model_the_probe_finds_answering_otherwise_keeps_scikit_learns_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = LogisticRegression(max_iter=500).fit(X, Y)
    assert linear_of(model) is not None

    def rounded(scores: np.ndarray) -> np.ndarray | None:
        answer = _linear._softmax(scores)
        return None if answer is None else np.round(answer, 6)

    monkeypatch.setattr(_linear, "_FORMULAS", (rounded, _linear._one_vs_rest))
    assert linear_of(model) is None
