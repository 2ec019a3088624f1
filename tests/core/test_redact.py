"""Answers name models, versions and files, never where the server keeps them or their hashes."""

from __future__ import annotations

import pytest

from modelport.core.redact import redact

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            f"refusing to load /srv/data/models/iris/2/model.joblib: its sha256 is {SHA}",
            "refusing to load .../iris/2/model.joblib: its sha256 is <sha256>",
        ),
        ("/home/me/models/iris/modelport.yaml: not valid YAML", ".../models/iris/modelport.yaml"),
        ("'/a/b/c/d/e' is missing", "'.../c/d/e' is missing"),
        ("see http://example.com/a/b/c/d", "see http://example.com/a/b/c/d"),
        ("models/iris/1/model.joblib", "models/iris/1/model.joblib"),
        ("POST /predict answered", "POST /predict answered"),
        ("no version '2'", "no version '2'"),
    ],
)
def test_redact(message: str, shown: str) -> None:
    assert shown in redact(message)
    assert SHA not in redact(message)
