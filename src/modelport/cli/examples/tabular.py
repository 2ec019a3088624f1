"""Tabular and text examples in scikit-learn: models trained offline from datasets that ship with
scikit-learn, written into a
model repository with their cards and pinned hashes. Training is deterministic.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np

from modelport.core.versions import add_version
from modelport.model.card import ModelCard
from modelport.model.signature import CardSignature, FieldSpec, OutputSpec

__all__ = [
    "Estimator",
    "iris_card",
    "sentiment_data",
    "train_iris",
    "train_sentiment",
    "train_wine",
]

Estimator = Literal["logistic", "forest"]

_IRIS_FIELDS = [
    ("sepal_length", "Sepal length in cm", 5.1),
    ("sepal_width", "Sepal width in cm", 3.5),
    ("petal_length", "Petal length in cm", 1.4),
    ("petal_width", "Petal width in cm", 0.2),
]


def _estimator(kind: Estimator) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "forest":
        return RandomForestClassifier(n_estimators=100, random_state=0)
    return LogisticRegression(max_iter=1000)


def _save(repo: Path, name: str, model: Any, card: ModelCard, version: int | None) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(model, path)
        return add_version(repo, name, path, card, version, reuse=True)


def train_iris(
    repo: Path, name: str = "iris", estimator: Estimator = "logistic", version: int | None = None
) -> Path:
    """The tutorial's Iris classifier, with the tutorial's field names and bounds."""
    from sklearn.datasets import load_iris

    data = load_iris()
    model = _estimator(estimator).fit(data.data, data.target)
    return _save(repo, name, model, iris_card("sklearn"), version)


def iris_card(runtime: str) -> ModelCard:
    """The Iris card: the tutorial's field names and bounds, the species as class names."""
    return ModelCard(
        description="Iris species from sepal and petal measurements (sklearn's load_iris).",
        runtime=runtime,
        signature=CardSignature(
            inputs=[
                FieldSpec(name=n, description=d, gt=0, le=10, example=e) for n, d, e in _IRIS_FIELDS
            ],
            output=OutputSpec(
                kind="classification", class_names=["setosa", "versicolor", "virginica"]
            ),
        ),
    )


def train_wine(
    repo: Path, name: str = "wine", estimator: Estimator = "logistic", version: int | None = None
) -> Path:
    """A wine cultivar classifier on 13 chemical measurements (sklearn's load_wine)."""
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_wine()
    model = make_pipeline(StandardScaler(), _estimator(estimator)).fit(data.data, data.target)
    highs = np.asarray(data.data).max(axis=0)
    inputs = [
        FieldSpec(name=n, ge=0, le=float(math.ceil(h * 2)), example=float(v))
        for n, h, v in zip(data.feature_names, highs, data.data[0], strict=True)
    ]
    card = ModelCard(
        description="Wine cultivar from 13 chemical measurements (sklearn's load_wine).",
        runtime="sklearn",
        signature=CardSignature(
            inputs=inputs,
            output=OutputSpec(
                kind="classification", class_names=[f"cultivar_{i + 1}" for i in range(3)]
            ),
        ),
    )
    return _save(repo, name, model, card, version)


def sentiment_data() -> tuple[list[str], list[str]]:
    """The labelled review sentences (English and Traditional Chinese) shipped with modelport."""
    text = resources.files("modelport").joinpath("data/sentiment.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def train_sentiment(
    repo: Path,
    name: str = "sentiment",
    estimator: Estimator = "logistic",
    version: int | None = None,
) -> Path:
    """A small text classifier (TF-IDF character n-grams + logistic regression) for English and
    Chinese reviews. Its held-out accuracy, written into its card, is that of a toy."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    texts, labels = sentiment_data()
    train_x, test_x, train_y, test_y = train_test_split(
        texts, labels, test_size=0.25, random_state=0, stratify=labels
    )

    def build() -> Any:
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        return make_pipeline(vectorizer, _estimator(estimator))

    accuracy = build().fit(train_x, train_y).score(test_x, test_y)
    model = build().fit(texts, labels)
    card = ModelCard(
        description=(
            f"Review sentiment (positive/negative), English and Traditional Chinese: TF-IDF "
            f"character n-grams + {estimator}, trained on the {len(texts)} sentences shipped with "
            f"modelport. Held-out accuracy {accuracy:.2f} on a 25% split: a demo, not a product."
        ),
        runtime="sklearn",
        signature=CardSignature(
            inputs=[
                FieldSpec(
                    name="text",
                    type="str",
                    description="A review, in English or Chinese.",
                    example="The staff were friendly and the room was spotless.",
                )
            ]
        ),
    )
    return _save(repo, name, model, card, version)
