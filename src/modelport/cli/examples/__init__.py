"""Example models trained offline from datasets that ship with scikit-learn, written into a
model repository with their cards and pinned hashes. Training is deterministic.

One module per family (``tabular``, ``trees``, ``digits``, ``text``); this module is the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelport.cli.examples.digits import train_digits
from modelport.cli.examples.tabular import Estimator, train_iris, train_sentiment, train_wine
from modelport.cli.examples.text import (
    train_embeddings_minilm,
    train_sentiment_minilm,
    train_sentiment_transformers,
)
from modelport.cli.examples.trees import train_iris_lightgbm, train_iris_onnx, train_iris_xgboost
from modelport.errors import InvalidInput

__all__ = ["EXAMPLES", "frameworks", "train_example"]

Trainer = Callable[..., Path]

#: example -> framework -> trainer; the first framework listed is the example's default.
#: A trainer takes ``(repo, *, name, estimator, version)`` and returns the written artifact; it
#: names the model itself (``iris-xgboost``, say) when no name is given.
EXAMPLES: dict[str, dict[str, Trainer]] = {
    "iris": {
        "sklearn": train_iris,
        "xgboost": train_iris_xgboost,
        "lightgbm": train_iris_lightgbm,
        "onnx": train_iris_onnx,
    },
    "wine": {"sklearn": train_wine},
    "digits": {"torch": train_digits},
    "sentiment": {
        "sklearn": train_sentiment,
        "transformers": train_sentiment_transformers,
        "minilm": train_sentiment_minilm,
    },
    "embeddings": {"minilm": train_embeddings_minilm},
}


def frameworks(example: str) -> list[str]:
    """The frameworks ``example`` can be trained with, its default first."""
    if example not in EXAMPLES:
        raise InvalidInput(f"unknown example {example!r}; choose from {', '.join(EXAMPLES)}")
    return list(EXAMPLES[example])


def train_example(
    example: str,
    repo: Path,
    *,
    framework: str | None = None,
    name: str | None = None,
    estimator: Estimator = "logistic",
    version: int | None = None,
) -> Path:
    """Train example ``example`` with ``framework`` (default: the example's first) into ``repo``.

    Returns the written artifact.
    """
    choices = frameworks(example)
    framework = framework or choices[0]
    if framework not in choices:
        raise InvalidInput(
            f"example {example!r} has no {framework!r} version; choose from {', '.join(choices)}"
        )
    trainer = EXAMPLES[example][framework]
    named = {"name": name} if name else {}
    return trainer(repo, **named, estimator=estimator, version=version)
