"""What requests are checked with: the one parser of integers from paths and headers, and
pydantic validation errors turned into precise, JSON-safe and bounded 422 answers."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from modelport.errors import InvalidInput

__all__ = ["MAX_VERSION_DIGITS", "ascii_int", "bounded", "invalid_input", "version_number"]

_MAX_INPUT_REPR = 200
_INT64 = 2**63
MAX_VERSION_DIGITS = 9  # versions are 1 to 999,999,999: in paths and as folder names
_MAX_ITEMS = 50  # problems listed in a 422's detail at most
_MAX_SUMMARY = 5  # problems named in its message
_MAX_KEYS = 8  # keys of an object that misses a field, named in the message
# pydantic's "a valid dictionary or instance of IrisRequest" names a class the caller never sees
_OBJECT = "Input should be a JSON object"


def ascii_int(raw: str | bytes, max_digits: int) -> int | None:
    """``raw`` as a non-negative integer when it is 1 to ``max_digits`` ASCII digits, else
    ``None``: the one parser of integers in paths and headers.

    ``str.isdigit`` alone accepts ``"²"`` and other Unicode digits that ``int`` refuses, and an
    unbounded ``int()`` of thousands of digits costs time; both are refused here.
    """
    if not 0 < len(raw) <= max_digits:
        return None
    if isinstance(raw, str) and not raw.isascii():
        return None
    return int(raw) if raw.isdigit() else None


def version_number(raw: str) -> int | None:
    """A model version written as text (a path segment, a folder name), else ``None``."""
    number = ascii_int(raw, MAX_VERSION_DIGITS)
    return number if number else None


def bounded(value: Any, limit: int = _MAX_INPUT_REPR) -> str:
    """A caller's value as text of at most ``limit`` characters, for an error message."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _json_safe(value: Any) -> Any:
    """An echoed input that any JSON encoder writes and that stays small: integers beyond 64
    bits, long strings and containers become bounded text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else bounded(_int_text(value), 40)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray):
        return bounded(bytes(value[: _MAX_INPUT_REPR + 1]).decode("utf-8", "replace"))
    return bounded(value)


def _int_text(value: int) -> str:
    """The digits of a huge integer without converting all of it (``str`` of 5,000 digits is
    refused by Python's int-to-str limit)."""
    digits = value.bit_length() * 30103 // 100000 + 1  # about log10(2) digits per bit
    if digits <= 40:
        return str(value)
    return f"an integer of about {digits} digits"


def _where(loc: Sequence[Any]) -> str:
    """``instances.0.sepal_length`` for ``["body", "instances", 0, "sepal_length"]``."""
    parts = loc[1:] if loc and loc[0] == "body" else loc
    return ".".join(str(p) for p in parts)


def _message(loc: Sequence[Any], msg: str) -> str:
    where = _where(loc)
    return f"{where}: {msg}" if where else msg


def _loc(loc: Sequence[Any]) -> list[Any]:
    """A location whose parts are bounded (a key can be a caller's megabyte-long string)."""
    return [p if isinstance(p, int) else bounded(p, 80) for p in loc]


def invalid_input(
    error: ValidationError | Sequence[Mapping[str, Any]],
    prefix: Sequence[str | int] = ("body",),
    example: Callable[[], Any] | None = None,
) -> InvalidInput:
    """An :class:`InvalidInput` naming every failing field and its rule, FastAPI's shape
    (``error`` is pydantic's, or the list of its errors that FastAPI raises for a query).

    When the body as a whole is wrong (not JSON, not an object) and ``example`` is given, the
    message shows a body that works (``example()`` is built only then).
    """
    found = error.errors(include_url=False) if isinstance(error, ValidationError) else error
    items = []
    for item in found[:_MAX_ITEMS]:
        loc = _loc([*prefix, *item["loc"]])
        model = item["type"] in ("model_type", "model_attributes_type")  # (ctx: a class name)
        msg = _OBJECT if model else item["msg"]
        entry: dict[str, Any] = {"type": item["type"], "loc": loc, "msg": bounded(msg)}
        if "input" in item and item["type"] != "missing":
            entry["input"] = _json_safe(item["input"])
        ctx = None if model else item.get("ctx")
        if ctx:
            entry["ctx"] = {k: _json_safe(v) for k, v in ctx.items()}
        items.append(entry)
    summary = "; ".join(_message(i["loc"], i["msg"]) for i in items[:_MAX_SUMMARY])
    if len(found) > _MAX_SUMMARY:
        summary += f"; and {len(found) - _MAX_SUMMARY} more"
    summary += _keys_sent(found, prefix)
    if example is not None and any(len(i["loc"]) <= len(prefix) for i in items):
        summary += f"; send a JSON object of field values, for example {json.dumps(example())}"
    return InvalidInput(summary or "invalid input", items)


def _keys_sent(found: Sequence[Mapping[str, Any]], prefix: Sequence[str | int]) -> str:
    """For an object that misses a required field, the keys it has, quoted (a misspelt field,
    camelCase for snake_case, shows at once), and where it is when nested (a batch's row);
    empty when no field is missing."""
    for item in found:
        sent = item.get("input")
        if item["type"] == "missing" and isinstance(sent, Mapping):
            where = _where(_loc([*prefix, *item["loc"][:-1]]))
            what = f"the object at {where}" if where else "the object sent"
            keys = [json.dumps(bounded(k, 40)) for k in itertools.islice(sent, _MAX_KEYS + 1)]
            if not keys:
                return f"; {what} has no keys"
            shown = ", ".join(keys[:_MAX_KEYS]) + (", ..." if len(keys) > _MAX_KEYS else "")
            return f"; {what} has {shown}"
    return ""
