"""Input fields described from real data: names, example values, bounds and categories.

``modelport import --feature-names/--example-from`` and :func:`modelport.card_from` both end
here. The model decides what it takes (:class:`ModelFacts`); the data only adds what the model
cannot tell: a real row as the example, generous bounds, the categories seen.

Bounds are deliberately wide, so that a value the model has not seen but may well meet is not
refused: a column never negative in the data gets ``ge: 0``, and every numeric column is kept
within twice its largest magnitude. Edit the card to tighten them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError
from modelport.model.signature import FieldSpec, FieldType, ModelFacts

__all__ = [
    "MISSING_CELLS",
    "described",
    "header",
    "named_inputs",
    "read_columns",
]

#: CSV cells read as a missing value.
MISSING_CELLS = frozenset({"", "na", "n/a", "nan", "null", "none"})
_SHOWN_CATEGORIES = 10


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING_CELLS


def named_inputs(facts: ModelFacts, names: Sequence[str] | None) -> list[FieldSpec]:
    """The model's inputs under ``names`` (default: the model's own), typed as the model says.

    Refuses names that do not fit the model: a count other than ``n_features_in_``, or names
    other than the ``feature_names_in_`` it was fitted with.
    """
    kind: FieldType = facts.input_type or "float"
    if names is None:
        if facts.feature_names is not None:
            names = facts.feature_names
        elif facts.n_features == 1 and kind == "str":
            names = ["text"]
        elif facts.n_features is not None:
            names = [f"x{i}" for i in range(facts.n_features)]
        else:
            raise ConfigError("the model does not say what it takes: give its feature names")
    names = list(names)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"feature names given twice: {', '.join(twice)}")
    if facts.n_features is not None and len(names) != facts.n_features:
        raise ConfigError(
            f"{len(names)} feature names given ({', '.join(names)}), but the model takes "
            f"{facts.n_features} features (its n_features_in_)"
        )
    if facts.feature_names is not None and names != facts.feature_names:
        raise ConfigError(
            f"the feature names given ({', '.join(names)}) differ from those the model was "
            f"fitted with ({', '.join(facts.feature_names)}); leave them out, the model's are used"
        )
    return [
        FieldSpec(
            name=name,
            type=facts.field_types.get(name, kind),
            choices=facts.field_choices.get(name),
        )
        for name in names
    ]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    return number


def _numeric(spec: FieldSpec, first: Any, values: list[float]) -> FieldSpec:
    limit = float(math.ceil(2 * max(abs(v) for v in values))) or 1.0
    low = 0.0 if min(values) >= 0 else -limit
    example: float | int = first
    if spec.type == "int" or (float(first).is_integer() and all(v.is_integer() for v in values)):
        example = int(first)
    return spec.model_copy(update={"ge": low, "le": limit, "example": example})


def _categorical(spec: FieldSpec, first: Any, values: list[str]) -> FieldSpec:
    update: dict[str, Any] = {"example": str(first)}
    if spec.choices is None and spec.description is None:
        seen = sorted(set(values))
        shown = ", ".join(seen[:_SHOWN_CATEGORIES]) + (
            ", ..." if len(seen) > _SHOWN_CATEGORIES else ""
        )
        update["description"] = f"Seen in the training data: {shown}."
    if spec.choices is not None and str(first) not in spec.choices:
        update["example"] = spec.choices[0]
    return spec.model_copy(update=update)


def _first_complete(columns: Mapping[str, Sequence[Any]], names: list[str]) -> int:
    rows = len(columns[names[0]]) if names else 0
    for index in range(rows):
        if not any(_is_missing(columns[n][index]) for n in names):
            return index
    raise ConfigError("the data has no row with a value in every input column")


def described(
    inputs: Sequence[FieldSpec], columns: Mapping[str, Sequence[Any]], source: str = "the data"
) -> list[FieldSpec]:
    """``inputs`` with examples (the first complete row), bounds and categories from the data.

    ``columns`` maps each input's name to its values (extra columns are ignored).
    """
    names = [f.name for f in inputs]
    missing = [n for n in names if n not in columns]
    if missing:
        raise ConfigError(
            f"{source} has no column {', '.join(missing)}; its columns: {', '.join(columns)}"
        )
    row = _first_complete(columns, names)
    fields = []
    for spec in inputs:
        cells = columns[spec.name]
        present = [v for v in cells if not _is_missing(v)]
        first = cells[row]
        if spec.type == "str":
            fields.append(_categorical(spec, first, [str(v) for v in present]))
        elif spec.type == "bool":
            fields.append(spec.model_copy(update={"example": bool(first)}))
        else:
            where = f"{source}, column {spec.name}"
            numbers = [_number(v, where) for v in present]
            fields.append(_numeric(spec, _number(first, where), numbers))
    return fields


def header(path: Path) -> list[str]:
    """The column names in the first line of a CSV file."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            names = next(csv.reader(handle), [])
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
    names = [n.strip() for n in names]
    if not names or not all(names):
        raise ConfigError(f"{path}: its first line is not a header of column names")
    return names


def read_columns(path: Path, names: Sequence[str]) -> dict[str, list[str]]:
    """The cells of columns ``names`` of a CSV file with a header line, as text."""
    columns = header(path)
    absent = [n for n in names if n not in columns]
    if absent:
        raise ConfigError(
            f"{path} has no column {', '.join(absent)}; its columns: {', '.join(columns)}"
        )
    where = {name: columns.index(name) for name in names}
    values: dict[str, list[str]] = {n: [] for n in names}
    with path.open(encoding="utf-8", newline="") as handle:
        lines = csv.reader(handle)
        next(lines, None)
        for cells in lines:
            if not any(c.strip() for c in cells):
                continue  # a blank line
            for name, index in where.items():
                values[name].append(cells[index] if index < len(cells) else "")
    if names and not values[names[0]]:
        raise ConfigError(f"{path}: no rows under its header")
    return values
