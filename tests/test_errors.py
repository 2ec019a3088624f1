"""The one error hierarchy: every class answers with a status of its own."""

from __future__ import annotations

import inspect

import modelport.errors as errors
from modelport.errors import ModelportError


def _classes() -> list[type[ModelportError]]:
    found, stack = [], [ModelportError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return [c for c in found if c.__module__ == errors.__name__]


def test_every_error_class_declares_a_status_and_a_code() -> None:
    classes = _classes()
    assert len(classes) == len(errors.__all__)
    for cls in classes:
        assert "status" in vars(cls), f"{cls.__name__} inherits its status"
        assert "code" in vars(cls), f"{cls.__name__} inherits its code"
        assert 400 <= cls.status <= 599, cls.__name__
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))


def test_only_the_base_is_a_500() -> None:
    """A 500 is modelport failing, never a caller's or a model file's fault."""
    assert [c.__name__ for c in _classes() if c.status == 500] == ["ModelportError"]


def test_the_tree_in_the_docstring_names_every_class() -> None:
    doc = inspect.getdoc(errors) or ""
    for cls in _classes():
        assert cls.__name__ in doc
