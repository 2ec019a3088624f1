"""Pydantic models derived from a signature: the request body of a model's ``/predict`` and the
shape of its answer, so Swagger shows real field names, bounds and a working example.
"""

from __future__ import annotations

import keyword
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from modelport.model.signature import FieldSpec, Signature

__all__ = ["batch_request_model", "batch_response_model", "request_model", "response_model"]

_TYPES: dict[str, Any] = {"float": float, "int": int, "str": str, "bool": bool}


def _python_name(name: str, index: int) -> str:
    candidate = re.sub(r"\W", "_", name)
    if not candidate.isidentifier() or keyword.iskeyword(candidate) or candidate.startswith("_"):
        return f"field_{index}"
    if candidate in BaseModel.__dict__ or candidate.startswith("model_"):
        return f"field_{index}"
    return candidate


def _field(spec: FieldSpec) -> tuple[Any, Any]:
    annotation: Any = _TYPES[spec.type]
    if spec.choices:
        annotation = Literal[tuple(spec.choices)]
    extra: dict[str, Any] = {}
    if spec.type == "float":
        extra["allow_inf_nan"] = False
    if not spec.required:
        annotation = annotation | None
    info = Field(
        ... if spec.required else None,
        alias=spec.name,
        description=spec.description,
        gt=spec.gt,
        ge=spec.ge,
        lt=spec.lt,
        le=spec.le,
        examples=[spec.example_value()],
        **extra,
    )
    return annotation, info


def _class_name(model: str, suffix: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", model)
    return "".join(w[:1].upper() + w[1:] for w in words if w) + suffix


def request_model(model: str, signature: Signature, *, strict: bool = False) -> type[BaseModel]:
    """The request body of one model: one field per input, extra keys ignored unless strict."""
    fields: dict[str, Any] = {}
    used: set[str] = set()
    for index, spec in enumerate(signature.inputs):
        python_name = _python_name(spec.name, index)
        if python_name in used:
            python_name = f"field_{index}"
        used.add(python_name)
        fields[python_name] = _field(spec)
    config = ConfigDict(
        extra="forbid" if strict else "ignore",
        populate_by_name=False,
        json_schema_extra={"examples": [dict(signature.example())]},
    )
    return create_model(_class_name(model, "Request"), __config__=config, **fields)


class ClassificationAnswer(BaseModel):
    prediction: str | int | float | bool = Field(description="The predicted class.")
    probability: float = Field(description="Probability of the predicted class.")
    probabilities: list[float] = Field(
        description="Probability of each class in class order, rounded to 4 places."
    )


class LabelAnswer(BaseModel):
    prediction: str | int | float | bool = Field(description="The predicted class.")


class TopClass(BaseModel):
    label: str | int | float | bool
    probability: float


class ImageAnswer(ClassificationAnswer):
    top_k: list[TopClass] = Field(description="The most probable classes, most probable first.")


class RegressionAnswer(BaseModel):
    prediction: float = Field(description="The predicted value.")


class VectorAnswer(BaseModel):
    prediction: list[float] = Field(description="The predicted vector (an embedding).")


def response_model(signature: Signature) -> type[BaseModel]:
    """The tutorial-shaped answer for a model of this signature."""
    if signature.output.width is not None:
        return VectorAnswer
    if signature.output.kind == "regression":
        return RegressionAnswer
    if signature.image is not None and signature.output.probabilities:
        return ImageAnswer
    return ClassificationAnswer if signature.output.probabilities else LabelAnswer


def batch_request_model(
    model: str, request: type[BaseModel], signature: Signature, limit: int
) -> type[BaseModel]:
    """``{"instances": [request, ...]}`` with at most ``limit`` instances."""
    example: dict[str, Any] = dict(signature.example())
    config = ConfigDict(json_schema_extra={"examples": [{"instances": [example, example]}]})
    field = Field(..., min_length=1, max_length=limit, description="Objects of field values.")
    return create_model(
        _class_name(model, "BatchRequest"),
        __config__=config,
        instances=(list[request], field),  # type: ignore[valid-type]
    )


def batch_response_model(model: str, answer: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        _class_name(model, "BatchAnswer"),
        model_name=(str, ...),
        model_version=(int, ...),
        predictions=(
            list[answer],  # type: ignore[valid-type]
            Field(..., description="One answer per instance, in order."),
        ),
    )
