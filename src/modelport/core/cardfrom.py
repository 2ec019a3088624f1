"""``modelport.card_from(model, X)``: a model card from the estimator and the data it was fitted
on, at training time: field names, types, a real row as the example, bounds and categories.

::

    card = modelport.card_from(model, X_train, class_names=["stays", "churns"])
    card.save("churn.yaml")  # then: modelport import churn.joblib --name churn --card churn.yaml
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelport.model.card import ModelCard
from modelport.model.datacard import described, named_inputs
from modelport.model.signature import CardSignature, FieldSpec, OutputSpec, resolve_signature

__all__ = ["card_from"]


def _frame_columns(x: Any) -> list[str] | None:
    columns = getattr(x, "columns", None)
    return [str(c) for c in columns] if columns is not None else None


def _typed(inputs: list[FieldSpec], x: Any) -> list[FieldSpec]:
    """A DataFrame's text and boolean columns are typed so, whatever the model could tell."""
    dtypes = getattr(x, "dtypes", None)
    if dtypes is None:
        return inputs
    kinds = {str(name): getattr(dtype, "kind", "O") for name, dtype in dtypes.items()}
    typed = []
    for spec in inputs:
        kind = kinds.get(spec.name)
        if kind in ("O", "U", "S") and spec.type != "str":  # object, category, string
            spec = spec.model_copy(update={"type": "str"})
        elif kind == "b":
            spec = spec.model_copy(update={"type": "bool"})
        typed.append(spec)
    return typed


def _columns(x: Any, names: list[str]) -> dict[str, list[Any]]:
    if _frame_columns(x) is not None:
        return {name: list(x[name].tolist()) for name in names if name in x}
    array = np.asarray(x, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    return {name: array[:, i].tolist() for i, name in enumerate(names) if i < array.shape[1]}


def card_from(
    model: Any,
    x: Any,
    *,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    description: str | None = None,
) -> ModelCard:
    """A card for a fitted scikit-learn-style ``model`` from its training data ``x`` (a pandas
    DataFrame, or an array with ``feature_names``): every input's name and type, the first
    complete row as the example, generous bounds (see :mod:`modelport.model.datacard`) and the
    categories seen. A card that contradicts the model is refused.
    """
    from modelport.runtimes.sklearn import facts_of

    facts = facts_of(model)
    names = list(feature_names) if feature_names is not None else None
    if names is None and facts.feature_names is None:
        names = _frame_columns(x)
    inputs = _typed(named_inputs(facts, names), x)
    inputs = described(inputs, _columns(x, [f.name for f in inputs]), "the training data")
    output = OutputSpec(class_names=list(class_names)) if class_names else None
    signature = CardSignature(inputs=inputs, output=output)
    resolve_signature(signature, facts)  # refuses class names the model contradicts
    return ModelCard(description=description, signature=signature)
