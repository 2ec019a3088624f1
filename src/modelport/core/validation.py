"""Turning pydantic validation errors into precise, JSON-safe 422 answers."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from modelport.errors import InvalidInput

__all__ = ["invalid_input"]

_MAX_INPUT_REPR = 200


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes | bytearray):
        text = bytes(value[:_MAX_INPUT_REPR]).decode("utf-8", "replace")
        return text + ("..." if len(value) > _MAX_INPUT_REPR else "")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    text = repr(value)
    return text if len(text) <= _MAX_INPUT_REPR else text[:_MAX_INPUT_REPR] + "..."


def _message(loc: Sequence[Any], msg: str) -> str:
    parts = loc[1:] if loc and loc[0] == "body" else loc
    where = ".".join(str(p) for p in parts)
    return f"{where}: {msg}" if where else msg


def invalid_input(
    error: ValidationError,
    prefix: Sequence[str | int] = ("body",),
    example: Callable[[], Any] | None = None,
) -> InvalidInput:
    """An :class:`InvalidInput` naming every failing field and its rule, FastAPI's shape.

    When the body as a whole is wrong (not JSON, not an object) and ``example`` is given, the
    message shows a body that works (``example()`` is built only then).
    """
    items = []
    for item in error.errors(include_url=False):
        loc = [*prefix, *item["loc"]]
        entry: dict[str, Any] = {"type": item["type"], "loc": loc, "msg": item["msg"]}
        if "input" in item and item["type"] != "missing":
            entry["input"] = _json_safe(item["input"])
        ctx = item.get("ctx")
        if ctx:
            entry["ctx"] = {k: _json_safe(v) for k, v in ctx.items()}
        items.append(entry)
    summary = "; ".join(_message(i["loc"], i["msg"]) for i in items)
    if example is not None and any(len(i["loc"]) <= len(prefix) for i in items):
        summary += f"; send a JSON object of field values, for example {json.dumps(example())}"
    return InvalidInput(summary or "invalid input", items)
