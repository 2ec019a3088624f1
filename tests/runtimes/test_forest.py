"""Forests answered through their trees' tables: bit for bit scikit-learn's own answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from modelport.runtimes import _forest
from modelport.runtimes._forest import forest_of
from tests.runtimes.test_runtimes import load, save

X, Y = load_iris(return_X_y=True)
XR, YR = load_diabetes(return_X_y=True)
# Rows inside and far outside the training ranges, some on the float32 rounding of a threshold.
WIDE = np.random.default_rng(1).uniform(-20, 20, size=(2000, 4))


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(n_estimators=30, random_state=0),
        ExtraTreesClassifier(n_estimators=30, random_state=0),
        RandomForestClassifier(
            n_estimators=30, class_weight="balanced", max_depth=3, random_state=29
        ),
    ],
    ids=["random-forest", "extra-trees", "weighted-shallow"],
)
def test_classifiers_answer_bit_for_bit(tmp_path: Path, estimator: Any) -> None:
    model = estimator.fit(X, np.array(["setosa", "versicolor", "virginica"])[Y])
    runtime, _ = load(save(model, tmp_path / "m.joblib"))
    assert runtime._fast is not None
    for rows in (X, WIDE, X[:1]):
        outputs = runtime.predict(rows)
        np.testing.assert_array_equal(outputs.probabilities, model.predict_proba(rows))
        np.testing.assert_array_equal(outputs.predictions, model.predict(rows))


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(n_estimators=25, max_depth=12, random_state=6),
        RandomForestClassifier(n_estimators=25, min_samples_leaf=10, random_state=1),
        ExtraTreesClassifier(n_estimators=25, min_samples_leaf=5, random_state=2),
    ],
    ids=["deep", "wide-leaves", "extra-trees"],
)
def test_impure_leaves_answer_bit_for_bit(estimator: Any) -> None:
    """Leaves holding several classes, whose stored fractions need not add up to exactly 1: the
    values are read as stored, never normalised again (a second division moved the last bit)."""
    x, y = make_classification(
        n_samples=600, n_features=8, n_informative=5, n_classes=7, flip_y=0.05, random_state=6
    )
    model = estimator.fit(np.round(x, 1), y)
    forest = forest_of(model)
    assert forest is not None
    rows = np.random.default_rng(6).normal(size=(20_000, 8)) * 2
    np.testing.assert_array_equal(forest(rows), model.predict_proba(rows))


def test_a_forest_of_several_jobs_is_summed_in_order() -> None:
    model = RandomForestClassifier(n_estimators=40, n_jobs=2, random_state=0).fit(X, Y)
    forest = forest_of(model)
    assert forest is not None
    assert model.n_jobs == 2  # the probe's setting is given back
    model.n_jobs = None
    np.testing.assert_array_equal(forest(WIDE), model.predict_proba(WIDE))


@pytest.mark.parametrize("estimator", [RandomForestRegressor, ExtraTreesRegressor])
def test_regressors_answer_bit_for_bit(tmp_path: Path, estimator: Any) -> None:
    model = estimator(n_estimators=20, random_state=0).fit(XR, YR)
    runtime, _ = load(save(model, tmp_path / "r.joblib"))
    assert runtime._fast is not None
    outputs = runtime.predict(XR)
    assert outputs.probabilities is None
    np.testing.assert_array_equal(outputs.predictions, model.predict(XR))


def test_a_forest_fitted_on_a_dataframe_skips_the_frame(tmp_path: Path) -> None:
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(frame, Y)
    runtime, facts = load(save(model, tmp_path / "m.joblib"))
    assert facts.feature_names == ["sl", "sw", "pl", "pw"]

    def no_frame(rows: np.ndarray) -> None:
        raise AssertionError("a DataFrame was built")

    runtime._frame = no_frame  # type: ignore[method-assign]
    np.testing.assert_array_equal(runtime.predict(X).probabilities, model.predict_proba(frame))


def test_values_scikit_learn_refuses_still_reach_it(tmp_path: Path) -> None:
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    runtime, _ = load(save(model, tmp_path / "m.joblib"))
    forest = runtime._fast
    assert forest is not None
    assert forest(np.array([[1.0, 2.0, np.inf, 1.0]])) is None
    assert forest(np.array([[1e39, 2.0, 3.0, 1.0]])) is None  # infinite as float32
    assert forest(np.array([[1.0, 2.0, 3.0]])) is None
    assert forest(np.array([["a", "b", "c", "d"]], dtype=object)) is None
    assert forest(np.array([[1.0, 2.0, 3.0, 1.0 + 2.0j]])) is None
    assert forest(np.empty((0, 4))) is None
    with pytest.raises(ValueError, match="infinity"):
        runtime.predict(np.array([[1.0, 2.0, np.inf, 1.0]]))


def test_a_pipeline_ending_in_a_forest_transforms_then_reads_the_forest(tmp_path: Path) -> None:
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=0))
    model.fit(X, Y)
    runtime, facts = load(save(model, tmp_path / "m.joblib"))
    assert runtime._fast is not None
    assert facts.has_probabilities
    for rows in (X, WIDE):
        outputs = runtime.predict(rows)
        np.testing.assert_array_equal(outputs.probabilities, model.predict_proba(rows))
        np.testing.assert_array_equal(outputs.predictions, model.predict(rows))
    with pytest.raises(ValueError, match="infinity"):  # scikit-learn's own check says why
        runtime.predict(np.array([[1.0, 2.0, np.inf, 1.0]]))


class Log1p(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A stateless transformer: nothing fitted, so scikit-learn's fitted check would refuse it
    on its own, and the Pipeline never asks."""

    def fit(self, x: Any, y: Any = None) -> Log1p:
        return self

    def transform(self, x: Any) -> Any:
        return np.log1p(np.abs(x))


@pytest.mark.parametrize(
    "steps",
    [
        [("forest", RandomForestClassifier(n_estimators=10, random_state=0))],
        [("skip", "passthrough"), ("forest", RandomForestClassifier(n_estimators=10))],
        [("none", None), ("log", Log1p()), ("forest", RandomForestClassifier(n_estimators=10))],
    ],
    ids=["forest-alone", "passthrough", "stateless-step"],
)
def test_pipelines_run_their_steps_as_their_own_predict_does(
    tmp_path: Path, steps: list[tuple[str, Any]]
) -> None:
    model = Pipeline(steps).fit(X, Y)
    runtime, _ = load(save(model, tmp_path / "m.joblib"))
    assert runtime._fast is not None
    outputs = runtime.predict(X)
    np.testing.assert_array_equal(outputs.probabilities, model.predict_proba(X))
    np.testing.assert_array_equal(outputs.predictions, model.predict(X))


def test_a_text_pipeline_ending_in_a_forest_hands_its_sparse_rows_to_the_forest(
    tmp_path: Path,
) -> None:
    texts = np.array(["good film", "bad film", "great fun", "awful plot", "good fun", "bad fun"])
    labels = np.array([1, 0, 1, 0, 1, 0])
    model = make_pipeline(
        TfidfVectorizer(), RandomForestClassifier(n_estimators=10, random_state=0)
    ).fit(texts, labels)
    runtime, facts = load(save(model, tmp_path / "t.joblib"))
    assert facts.input_type == "str"
    assert runtime._fast is not None  # its rows reach the forest sparse: the forest answers
    rows = np.array([["good plot"], ["awful film"]], dtype=object)
    outputs = runtime.predict(rows)
    np.testing.assert_array_equal(outputs.probabilities, model.predict_proba(rows[:, 0]))
    np.testing.assert_array_equal(outputs.predictions, model.predict(rows[:, 0]))


def test_other_models_keep_scikit_learns_path(tmp_path: Path) -> None:
    boosting = GradientBoostingClassifier(n_estimators=5).fit(X, Y)
    assert forest_of(boosting) is None
    scaled = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=5))
    runtime, _ = load(save(scaled.fit(X, Y), tmp_path / "m.joblib"))
    assert runtime._fast is None
    np.testing.assert_array_equal(runtime.predict(X).probabilities, scaled.predict_proba(X))


def test_multi_output_and_unfitted_forests_keep_scikit_learns_path() -> None:
    both = np.stack([Y, Y[::-1]], axis=1)
    assert forest_of(RandomForestClassifier(n_estimators=5).fit(X, both)) is None
    assert forest_of(RandomForestClassifier()) is None


def test_a_forest_whose_answers_differ_on_the_probe_keeps_its_own_path() -> None:
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    assert forest_of(model) is not None
    model.predict_proba = lambda rows: np.full((len(rows), 3), 1 / 3)
    assert forest_of(model) is None


def test_a_scikit_learn_that_stored_counts_keeps_its_own_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before 1.4 a tree kept class counts, which its predict_proba divided on every call."""
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    monkeypatch.setattr(sklearn, "__version__", "1.3.2")
    assert forest_of(model) is None
    for later in ("1.4.0", "1.10rc1", "2.0.dev0"):
        monkeypatch.setattr(sklearn, "__version__", later)
        assert forest_of(model) is not None


def test_the_probe_reaches_both_sides_of_each_features_thresholds() -> None:
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X * [1, 1e5, 1e-4, 1], Y)
    rows = _forest._probe(model)
    assert rows.shape == (256, 4)
    for feature in range(4):
        cuts = np.concatenate(
            [e.tree_.threshold[e.tree_.feature == feature] for e in model.estimators_]
        )
        nearest = cuts[np.abs(rows[:, [feature]] - cuts).argmin(axis=1)]
        assert (rows[:, feature] < nearest).any()
        assert (rows[:, feature] > nearest).any()
