"""The one integer parser of paths and headers, and bounded echoes in 422 answers."""

from __future__ import annotations

import json

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from modelport.core.validation import ascii_int, bounded, invalid_input, version_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("42", 42),
        (b"42", 42),
        ("007", 7),
        ("123456789", 123456789),
        ("1234567890", None),  # more digits than allowed
        ("9" * 5000, None),
        ("", None),
        ("²", None),  # str.isdigit() says yes, int() says no
        ("³", None),
        ("²".encode(), None),
        ("١٢", None),  # Arabic-Indic digits: int() would take them
        ("12a", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1_000", None),
    ],
)
def test_ascii_int(raw: str | bytes, expected: int | None) -> None:
    assert ascii_int(raw, 9) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", 1), ("0", None), ("00", None), ("999999999", 999999999)]
)
def test_version_number(raw: str, expected: int | None) -> None:
    assert version_number(raw) == expected


def test_bounded() -> None:
    assert bounded("short") == "short"
    assert bounded("x" * 1000, 10) == "x" * 10 + "..."
    assert bounded([1, 2]) == "[1, 2]"


class _Row(BaseModel):
    x: float
    name: str


def _invalid(body: str | dict[str, object]) -> dict[str, object]:
    try:
        if isinstance(body, str):
            _Row.model_validate_json(body)
        else:
            _Row.model_validate(body)
    except ValidationError as exc:
        error = invalid_input(exc)
    else:
        raise AssertionError("valid")
    return {"error": error.message, "detail": error.errors}


def test_an_integer_beyond_64_bits_is_echoed_as_text() -> None:
    body = _invalid('{"x": 1, "name": 123456789012345678901234567890}')
    (item,) = body["detail"]  # type: ignore[misc]
    assert item["input"] == "123456789012345678901234567890"
    assert orjson.dumps(body)  # orjson refuses integers beyond 64 bits


def test_a_huge_integer_is_echoed_as_bounded_text() -> None:
    body = _invalid({"x": 1, "name": 10**5000})
    assert len(orjson.dumps(body)) < 1000
    (item,) = body["detail"]  # type: ignore[misc]
    assert item["input"] == "an integer of about 5001 digits"


def test_a_long_string_is_echoed_truncated() -> None:
    body = _invalid('{"x": "' + "a" * 100_000 + '", "name": "n"}')
    assert len(json.dumps(body)) < 1000


def test_many_problems_are_listed_bounded() -> None:
    class Wide(BaseModel):
        model_config = {"extra": "forbid"}

    fields = ", ".join(f'"{"k" * 500}{i}": {i}' for i in range(1000))
    try:
        Wide.model_validate_json("{" + fields + "}")
    except ValidationError as exc:
        error = invalid_input(exc)
    assert len(error.errors) == 50
    assert "and 995 more" in error.message
    assert len(json.dumps(error.to_body())) < 50_000


def test_a_missing_field_names_the_keys_that_were_sent() -> None:
    """A misspelt field (camelCase for snake_case) shows at once: the message lists the keys of
    the object that lacks a field, at most eight, each bounded."""
    body = _invalid({"X": 1, "Name": "n"})
    assert body["error"] == (
        'x: Field required; name: Field required; the object sent has "X", "Name"'
    )
    many = {f"{'k' * 100}{i}": i for i in range(1000)}
    message = str(_invalid(many)["error"])
    assert message.endswith(", ...")
    assert message.count("k" * 40) == 8
    assert len(message) < 600
    assert str(_invalid({})["error"]).endswith("; the object sent has no keys")
    assert str(_invalid({"a, b": 1})["error"]).endswith('the object sent has "a, b"')
    assert "object sent" not in str(_invalid({"x": "a", "name": "n"})["error"])


def test_a_body_that_is_not_an_object_is_named_so_without_a_class_name() -> None:
    """pydantic says "a valid dictionary or instance of _Row" (Python) or "an object" (JSON);
    the caller never sees the class: both read "a JSON object", with no class in ``ctx``."""
    for error in (_invalid("[1, 2]"), _invalid_python([1, 2])):
        (item,) = error["detail"]  # type: ignore[misc]
        assert item["msg"] == "Input should be a JSON object"
        assert "ctx" not in item
        assert "_Row" not in json.dumps(error)


def _invalid_python(body: object) -> dict[str, object]:
    try:
        _Row.model_validate(body)
    except ValidationError as exc:
        error = invalid_input(exc)
        return {"error": error.message, "detail": error.errors}
    raise AssertionError("valid")


def test_a_nested_object_missing_a_field_is_named_by_where_it_is() -> None:
    class Batch(BaseModel):
        instances: list[_Row]

    try:
        Batch.model_validate_json('{"instances": [{"x": 1, "name": "a"}, {"X": 1, "name": "b"}]}')
    except ValidationError as exc:
        message = invalid_input(exc).message
    assert message == 'instances.1.x: Field required; the object at instances.1 has "X", "name"'
