"""Input fields described from data: the example is the first complete row, bounds are generous,
categories are shown; names that do not fit the model are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.errors import ConfigError
from modelport.model.datacard import described, named_inputs, read_columns
from modelport.model.signature import FieldSpec, ModelFacts


def test_the_first_complete_row_is_the_example_and_bounds_are_generous() -> None:
    inputs = [FieldSpec(name="t"), FieldSpec(name="n"), FieldSpec(name="c", type="str")]
    columns = {"t": ["", "-3.5", "2"], "n": ["1", "4", "NA"], "c": ["a", "b", "b"]}
    t, n, c = described(inputs, columns)
    assert (t.ge, t.le, t.example) == (-7.0, 7.0, -3.5)
    assert (n.ge, n.le, n.example) == (0.0, 8.0, 4)  # whole numbers: an int example
    assert (c.example, c.description) == ("b", "Seen in the training data: a, b.")


def test_an_encoders_choices_stay_and_give_the_example() -> None:
    spec = FieldSpec(name="c", type="str", choices=["x", "y"])
    (field,) = described([spec], {"c": ["z", "x"]})
    assert (field.choices, field.example, field.description) == (["x", "y"], "x", None)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"t": ["1", ""], "n": ["", "2"]}, "no row with a value in every input column"),
        ({"t": ["1"], "n": ["x"]}, "column n: 'x' is not a number"),
        ({"t": ["1"]}, "has no column n; its columns: t"),
    ],
)
def test_data_that_cannot_describe_the_inputs_is_refused(
    columns: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        described([FieldSpec(name="t"), FieldSpec(name="n")], columns)


def test_names_must_fit_the_model() -> None:
    facts = ModelFacts(n_features=2, feature_names=["a", "b"])
    assert [f.name for f in named_inputs(facts, None)] == ["a", "b"]
    with pytest.raises(ConfigError, match="differ from those the model was fitted with"):
        named_inputs(facts, ["b", "a"])
    assert [f.name for f in named_inputs(ModelFacts(n_features=2), None)] == ["x0", "x1"]


def test_csv_columns_are_read_by_header(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,target\n1,2,x\n\n3,,y\n")
    assert read_columns(path, ["b", "a"]) == {"b": ["2", ""], "a": ["1", "3"]}
