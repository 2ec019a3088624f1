"""Vectorised checks of a whole batch against a signature: types, finiteness, bounds, choices.

Used by the tensor protocols (KServe V1 rows, Open Inference Protocol tensors), where validating
row by row through pydantic would cost more than the model. Messages name the field, the row
and the rule, like the tutorial protocol's 422 messages do.
"""

from __future__ import annotations

import numpy as np

from modelport.core.validation import bounded
from modelport.errors import InvalidInput
from modelport.model.images import check_images
from modelport.model.signature import FieldSpec, Signature

__all__ = ["check_rows"]

_RULES = (
    ("gt", np.greater, "greater than"),
    ("ge", np.greater_equal, "greater than or equal to"),
    ("lt", np.less, "less than"),
    ("le", np.less_equal, "less than or equal to"),
)


def _fail(spec: FieldSpec, row: int, rule: str, value: object) -> InvalidInput:
    if isinstance(value, np.generic):  # numpy's repr is np.float32(1.0): show the value
        value = value.item()
    return InvalidInput(f"{spec.name} (row {row}): {rule}, got {bounded(repr(value), 80)}")


def _numeric(spec: FieldSpec, column: np.ndarray) -> np.ndarray:
    try:
        values = column.astype(np.float64)
    except (TypeError, ValueError) as exc:
        bad = next(i for i, v in enumerate(column) if not _is_number(v))
        raise _fail(spec, bad, "Input should be a valid number", column[bad]) from exc
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise _fail(spec, bad, "Input should be a finite number", float(values[bad]))
    for key, compare, words in _RULES:
        bound = getattr(spec, key)
        if bound is None:
            continue
        ok = compare(values, bound)
        if not ok.all():
            bad = int(np.argmin(ok))
            raise _fail(spec, bad, f"Input should be {words} {bound:g}", float(values[bad]))
    return values


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str | bytes)


def _text(spec: FieldSpec, column: np.ndarray) -> np.ndarray:
    out = np.empty(len(column), dtype=object)
    for i, value in enumerate(column):
        if isinstance(value, bytes | np.bytes_):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _fail(spec, i, "Input should be UTF-8 text", value[:40]) from exc
        if not isinstance(value, str):
            raise _fail(spec, i, "Input should be a valid string", value)
        if spec.choices and value not in spec.choices:
            raise _fail(spec, i, f"Input should be one of {spec.choices}", value)
        out[i] = value
    return out


def check_rows(signature: Signature, rows: np.ndarray) -> np.ndarray:
    """Check a ``(batch, n_inputs)`` array; return it as float64, or object when text is in it.

    Image models take ``(batch, C, H, W)`` instead, returned as float32."""
    if signature.image is not None:
        return check_images(signature.image, rows)
    if rows.ndim != 2 or rows.shape[1] != len(signature.inputs):
        shape = list(rows.shape)
        raise InvalidInput(
            f"expected rows of {len(signature.inputs)} values ({', '.join(signature.names)}), "
            f"got an array of shape {shape}"
        )
    if all(spec.type != "str" for spec in signature.inputs):
        columns = [_numeric(spec, rows[:, j]) for j, spec in enumerate(signature.inputs)]
        return np.stack(columns, axis=1) if columns else rows.astype(np.float64)
    out = np.empty(rows.shape, dtype=object)
    for j, spec in enumerate(signature.inputs):
        out[:, j] = _text(spec, rows[:, j]) if spec.type == "str" else _numeric(spec, rows[:, j])
    return out
