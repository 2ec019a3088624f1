from __future__ import annotations

from pathlib import Path

import pytest

from modelport.errors import CardError
from modelport.model.card import ModelCard, read_card, write_card
from modelport.model.signature import CardSignature, FieldSpec


def test_missing_or_empty_card_is_empty(tmp_path: Path) -> None:
    assert read_card(tmp_path / "none.yaml") == ModelCard()
    (tmp_path / "empty.yaml").write_text("")
    assert read_card(tmp_path / "empty.yaml") == ModelCard()


def test_round_trip(tmp_path: Path) -> None:
    card = ModelCard(
        description="d",
        runtime="sklearn",
        default_version=2,
        strict=True,
        signature=CardSignature(inputs=[FieldSpec(name="a", gt=0, example=1.5)]),
    )
    write_card(tmp_path / "c.yaml", card)
    assert read_card(tmp_path / "c.yaml") == card


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runtme: sklearn\n", "runtme: Extra inputs are not permitted"),
        ("default_version: 0\n", "default_version: Input should be greater than or equal to 1"),
        ("signature:\n  inputs:\n    - {name: a, typ: float}\n", "signature.inputs.0.typ"),
        ("- a\n- b\n", "a model card is a mapping"),
        ("key: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_cards_say_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "modelport.yaml"
    path.write_text(text)
    with pytest.raises(CardError) as info:
        read_card(path)
    assert str(path) in info.value.message
    assert message in info.value.message
