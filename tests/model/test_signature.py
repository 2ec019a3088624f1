from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelport.core.schemas import request_model
from modelport.errors import SignatureError
from modelport.model.signature import (
    CardSignature,
    FieldSpec,
    ModelFacts,
    OutputSpec,
    Signature,
    resolve_signature,
)

IRIS_FACTS = ModelFacts(
    n_features=4, kind="classification", classes=[0, 1, 2], has_probabilities=True
)


def test_names_come_from_the_model_when_it_knows_them() -> None:
    facts = ModelFacts(n_features=2, feature_names=["age", "income"], kind="regression")
    signature = resolve_signature(None, facts)
    assert signature.names == ["age", "income"]
    assert signature.output.kind == "regression"
    assert signature.classes is None


def test_unnamed_features_get_positional_names() -> None:
    assert resolve_signature(None, IRIS_FACTS).names == ["x0", "x1", "x2", "x3"]


def test_card_names_and_class_names_fill_what_the_model_does_not_know() -> None:
    card = CardSignature(
        inputs=[FieldSpec(name=n) for n in "abcd"],
        output=OutputSpec(class_names=["setosa", "versicolor", "virginica"]),
    )
    signature = resolve_signature(card, IRIS_FACTS)
    assert signature.names == ["a", "b", "c", "d"]
    assert signature.label(2) == "virginica"
    assert signature.output.probabilities is True


@pytest.mark.parametrize(
    ("card", "facts", "message"),
    [
        (
            CardSignature(inputs=[FieldSpec(name="a")]),
            IRIS_FACTS,
            "lists 1 inputs but the model takes 4",
        ),
        (
            CardSignature(inputs=[FieldSpec(name="b"), FieldSpec(name="a")]),
            ModelFacts(n_features=2, feature_names=["a", "b"]),
            "differ from the names the model was trained with",
        ),
        (
            CardSignature(inputs=[FieldSpec(name="a"), FieldSpec(name="a")]),
            ModelFacts(n_features=2),
            "names an input twice",
        ),
        (CardSignature(output=OutputSpec(class_names=["x", "y"])), IRIS_FACTS, "names 2 classes"),
        (
            CardSignature(output=OutputSpec(kind="regression")),
            IRIS_FACTS,
            "says regression but the model is a classification model",
        ),
        (
            CardSignature(output=OutputSpec(class_names=["x"])),
            ModelFacts(n_features=1, kind="regression"),
            "class_names given for a regression model",
        ),
        (None, ModelFacts(), "list `signature.inputs`"),
    ],
)
def test_contradictions_are_refused(
    card: CardSignature | None, facts: ModelFacts, message: str
) -> None:
    with pytest.raises(SignatureError, match=message.replace("`", ".").replace("(", ".")):
        resolve_signature(card, facts)


def test_card_can_turn_probabilities_off() -> None:
    card = CardSignature(output=OutputSpec(probabilities=False))
    assert resolve_signature(card, IRIS_FACTS).output.probabilities is False


def test_probabilities_need_a_model_that_gives_them() -> None:
    facts = ModelFacts(n_features=1, kind="classification", classes=[0, 1])
    assert resolve_signature(None, facts).output.probabilities is False


@pytest.mark.parametrize(
    ("spec", "example"),
    [
        (FieldSpec(name="a", example=3.0), 3.0),
        (FieldSpec(name="a", gt=0, le=10), 5.0),
        (FieldSpec(name="a", ge=2), 3.0),
        (FieldSpec(name="a", lt=2), 1.0),
        (FieldSpec(name="a", type="int", ge=0, le=5), 2),
        (FieldSpec(name="a", type="str", choices=["red", "blue"]), "red"),
        (FieldSpec(name="a", type="bool"), False),
        (FieldSpec(name="a"), 1.0),
    ],
)
def test_examples_fall_inside_the_bounds(spec: FieldSpec, example: object) -> None:
    assert spec.example_value() == example


@pytest.mark.parametrize(
    "bounds", [{"gt": 5, "lt": 5}, {"gt": 1, "ge": 1}, {"lt": 1, "le": 1}, {"ge": 3, "le": 1}]
)
def test_impossible_bounds_are_refused(bounds: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        FieldSpec(name="a", **bounds)  # type: ignore[arg-type]


def test_request_model_handles_names_that_are_not_identifiers() -> None:
    signature = Signature(
        inputs=[
            FieldSpec(name="od280/od315"),
            FieldSpec(name="class"),
            FieldSpec(name="model_config"),
            FieldSpec(name="colour", type="str", choices=["red", "blue"]),
        ],
        output=OutputSpec(kind="regression"),
    )
    model = request_model("weird", signature)
    record = model.model_validate(
        {"od280/od315": 1, "class": 2, "model_config": 3, "colour": "red"}
    )
    assert [getattr(record, f) for f in model.model_fields] == [1.0, 2.0, 3.0, "red"]
    with pytest.raises(ValidationError, match="'red' or 'blue'"):
        model.model_validate({"od280/od315": 1, "class": 2, "model_config": 3, "colour": "green"})
