from __future__ import annotations

from pathlib import Path

import pytest

from modelport.batching.scheduler import BatchPolicy
from modelport.errors import CardError
from modelport.model.card import BatchingCard, ModelCard, read_card, write_card
from modelport.model.signature import CardSignature, FieldSpec, OutputSpec
from modelport.settings import Settings


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


def test_a_stated_kind_survives_writing_the_card_even_as_the_default(tmp_path: Path) -> None:
    """An MLflow python_function model answering strings says so only through its signature:
    dropping ``kind: classification`` (the field's default) made it a regression that 500s."""
    stated = OutputSpec(kind="classification", probabilities=False)
    card = ModelCard(signature=CardSignature(inputs=[FieldSpec(name="text")], output=stated))
    path = tmp_path / "modelport.yaml"
    write_card(path, card)
    output = read_card(path).signature.output  # type: ignore[union-attr]
    assert output is not None
    assert "kind" in output.model_fields_set
    assert output.kind == "classification"
    unstated = ModelCard(signature=CardSignature(inputs=[FieldSpec(name="x")]))
    write_card(path, unstated)
    assert "kind" not in path.read_text()


def test_a_refusal_waits_less_than_a_kept_alive_connection_by_default() -> None:
    """The README's promise: with the defaults, a client that waits out its ``Retry-After``
    finds its keep-alive connection still open."""
    longest = BatchingCard().max_retry_after_s
    assert longest == BatchPolicy().max_retry_after_s
    assert longest < Settings.model_fields["keepalive_timeout"].default  # not the environment's
