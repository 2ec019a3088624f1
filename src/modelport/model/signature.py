"""A model's signature: its named, typed input fields and what it answers.

The signature comes from the model where it knows (``feature_names_in_``, ``n_features_in_``,
``classes_``) and from the model card where it does not; :func:`resolve_signature` merges the
two and refuses a card that contradicts its model. The HTTP request models are derived from it
by :mod:`modelport.core.schemas`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelport.errors import SignatureError
from modelport.model.imagespec import ImageSpec, Preprocessing

__all__ = ["FieldSpec", "ModelFacts", "OutputSpec", "Signature", "resolve_signature"]

FieldType = Literal["float", "int", "str", "bool"]
Kind = Literal["classification", "regression"]
Scalar = float | int | str | bool


class FieldSpec(BaseModel):
    """One input field: name, type, optional bounds, description and example."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: FieldType = "float"
    description: str | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: list[str] | None = None
    example: Scalar | None = None
    required: bool = Field(
        True,
        description="False: the field may be left out (missing numbers reach the model as NaN).",
    )

    @model_validator(mode="after")
    def _bounds_make_sense(self) -> FieldSpec:
        low = self.gt if self.gt is not None else self.ge
        high = self.lt if self.lt is not None else self.le
        if low is not None and high is not None and low >= high:
            raise ValueError(f"field {self.name!r}: lower bound {low} is not below {high}")
        if self.gt is not None and self.ge is not None:
            raise ValueError(f"field {self.name!r}: give gt or ge, not both")
        if self.lt is not None and self.le is not None:
            raise ValueError(f"field {self.name!r}: give lt or le, not both")
        return self

    def example_value(self) -> Scalar:
        """The card's example, or a value inside the bounds."""
        if self.example is not None:
            return self.example
        if self.choices:
            return self.choices[0]
        if self.type == "str":
            return "text"
        if self.type == "bool":
            return False
        low = self.gt if self.gt is not None else self.ge
        high = self.lt if self.lt is not None else self.le
        if low is not None and high is not None:
            value = (low + high) / 2
        elif low is not None:
            value = low + 1
        elif high is not None:
            value = high - 1
        else:
            value = 1.0
        return round(value) if self.type == "int" else value


class OutputSpec(BaseModel):
    """What the model answers: a class (with names and probabilities) or a value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind = "classification"
    class_names: list[str] | None = None
    probabilities: bool = True
    description: str | None = None
    width: int | None = Field(
        None, ge=1, description="Values in each prediction, for vector outputs (embeddings)."
    )


class Signature(BaseModel):
    """Inputs in the order the model expects them, and the output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[FieldSpec]
    output: OutputSpec
    classes: list[Scalar] | None = Field(
        None, description="The model's own class values, in the order of its probabilities."
    )
    image: ImageSpec | None = Field(None, description="Set for image models: one input, image.")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.inputs]

    def example(self) -> dict[str, Any]:
        if self.image is not None:  # a blank image, as the nested-list tensor
            channels, height, width = self.image.shape
            return {"image": [[[0.0] * width for _ in range(height)] for _ in range(channels)]}
        return {f.name: f.example_value() for f in self.inputs}

    def label(self, class_value: Any) -> Scalar:
        """The name a class value is shown as: the card's class name, else the value itself."""
        value = class_value.item() if hasattr(class_value, "item") else class_value
        if self.output.class_names and self.classes is not None:
            return self.output.class_names[self.classes.index(value)]
        return value  # type: ignore[no-any-return]


class ModelFacts(BaseModel):
    """What a runtime learned from the loaded model itself; ``None`` where it cannot tell."""

    model_config = ConfigDict(frozen=True)

    n_features: int | None = None
    feature_names: list[str] | None = None
    kind: Kind | None = None
    classes: list[Scalar] | None = None
    has_probabilities: bool = False
    input_type: FieldType | None = Field(
        None, description="The type of every input, when the model tells (text pipelines)."
    )
    field_types: dict[str, FieldType] = Field(
        default_factory=dict, description="Types of named inputs the model tells (encoders)."
    )
    field_choices: dict[str, list[str]] = Field(
        default_factory=dict, description="The only values a categorical input accepts."
    )
    input_shape: list[int | None] | None = Field(
        None, description="An image model's input tensor shape without the batch axis."
    )
    output_width: int | None = Field(
        None, description="Values in each prediction when the model answers vectors (embeddings)."
    )


class CardSignature(BaseModel):
    """The signature section of a model card: every part optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[FieldSpec] | None = None
    output: OutputSpec | None = None
    input: Literal["tabular", "image"] | None = Field(
        None, description="image: one image input (see shape and preprocessing)."
    )
    shape: tuple[int, int, int] | None = Field(None, description="Image tensor [C, H, W].")
    top_k: int | None = Field(None, ge=1, description="Classes in each image answer's top_k.")
    preprocessing: Preprocessing | None = None

    @model_validator(mode="after")
    def _image_keys(self) -> CardSignature:
        if self.input == "image":
            if self.shape is None:
                raise ValueError("input: image needs shape: [channels, height, width]")
            if self.inputs:
                raise ValueError("input: image takes no inputs list")
            self.image()  # validates channels, colour and mean/std lengths
        elif self.shape or self.top_k or self.preprocessing:
            raise ValueError("shape, top_k and preprocessing are for input: image")
        return self

    def image(self) -> ImageSpec | None:
        """The image input this card describes, if any."""
        if self.input != "image" or self.shape is None:
            return None
        extra: dict[str, Any] = {"top_k": self.top_k} if self.top_k is not None else {}
        if self.preprocessing is not None:
            extra["preprocessing"] = self.preprocessing
        return ImageSpec(shape=self.shape, **extra)


def _image_inputs(image: ImageSpec, facts: ModelFacts) -> list[FieldSpec]:
    shape = facts.input_shape
    if shape is not None:
        fits = len(shape) == 3 and all(
            d is None or d == want for d, want in zip(shape, image.shape, strict=True)
        )
        if not fits:
            raise SignatureError(
                f"the card's image shape {list(image.shape)} differs from the model's input "
                f"{['batch', *shape]}"
            )
    description = (
        f"A base64 PNG/JPEG, or the {'x'.join(map(str, image.shape))} tensor as nested lists."
    )
    return [FieldSpec(name="image", description=description)]


def _resolve_inputs(card: Sequence[FieldSpec] | None, facts: ModelFacts) -> list[FieldSpec]:
    if card:
        names = [f.name for f in card]
        if len(set(names)) != len(names):
            raise SignatureError(f"the card names an input twice: {names}")
        if facts.n_features is not None and len(card) != facts.n_features:
            raise SignatureError(
                f"the card lists {len(card)} inputs but the model takes {facts.n_features}"
            )
        if facts.feature_names is not None and names != facts.feature_names:
            raise SignatureError(
                f"the card's inputs {names} differ from the names the model was trained with "
                f"{facts.feature_names}; list them in that order or leave them out of the card"
            )
        return list(card)
    kind = facts.input_type or "float"
    if facts.feature_names is not None:
        return [
            FieldSpec(
                name=name,
                type=facts.field_types.get(name, kind),
                choices=facts.field_choices.get(name),
            )
            for name in facts.feature_names
        ]
    if facts.n_features == 1 and kind == "str":
        return [FieldSpec(name="text", type="str")]
    if facts.n_features is not None:
        return [FieldSpec(name=f"x{i}", type=kind) for i in range(facts.n_features)]
    raise SignatureError(
        "the model does not say what it takes: list `signature.inputs` in its card"
    )


def _resolve_output(card: OutputSpec | None, facts: ModelFacts) -> OutputSpec:
    stated = card.kind if card is not None and "kind" in card.model_fields_set else None
    if stated is not None and facts.kind is not None and stated != facts.kind:
        raise SignatureError(f"the card says {stated} but the model is a {facts.kind} model")
    kind = facts.kind or stated or "regression"
    names = card.class_names if card else None
    known = facts.classes
    if kind == "classification" and names is not None and known and len(names) != len(known):
        raise SignatureError(
            f"the card names {len(names)} classes but the model has {len(known)}: {known}"
        )
    if kind == "regression" and names:
        raise SignatureError("class_names given for a regression model")
    probabilities = facts.has_probabilities and (card.probabilities if card else True)
    description = card.description if card else None
    return OutputSpec(
        kind=kind,
        class_names=names,
        probabilities=probabilities,
        description=description,
        width=facts.output_width if kind == "regression" else None,
    )


def resolve_signature(card: CardSignature | None, facts: ModelFacts) -> Signature:
    """Merge what the card says with what the model knows; raise on contradictions."""
    image = card.image() if card else None
    if image is None and facts.input_shape is not None:
        raise SignatureError(
            f"the model takes a tensor of shape {['batch', *facts.input_shape]}: describe it "
            "in the card (signature: input: image, shape: [C, H, W])"
        )
    if image is not None:
        inputs = _image_inputs(image, facts)
    else:
        inputs = _resolve_inputs(card.inputs if card else None, facts)
    output = _resolve_output(card.output if card else None, facts)
    classes = facts.classes if output.kind == "classification" else None
    return Signature(inputs=inputs, output=output, classes=classes, image=image)
