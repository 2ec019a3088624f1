"""Offline scoring never replaces a file it did not write: an existing ``--output`` or errors file
(``<output>.errors.csv`` by default) is refused, exit code 2, before anything is scored, unless
``--force``; and the final writes are exclusive, so a file made while scoring is kept too."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pytest

from modelport.cli.offline import BadRow, BadRows
from modelport.cli.predict import _publish, _replaced
from modelport.errors import ConfigError
from tests.cli.test_cli import iris_repo, run

__all__ = ["iris_repo"]  # the fixture, shared with test_cli

HEADER = "sepal_length,sepal_width,petal_length,petal_width"
THEIRS = "the user's own file\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "new.csv"
    path.write_text(f"{HEADER}\n5.1,3.5,1.4,0.2\n6.7,,5.2,2.3\n6.3,3.3,6.0,2.5\n")
    return path


def _ours(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_an_existing_output_is_refused_unless_forced(
    capsys: pytest.CaptureFixture[str], iris_repo: Path, source: Path
) -> None:
    scored = source.with_name("scored.csv")
    scored.write_text(THEIRS)
    args = ["predict", str(iris_repo), "--input", str(source), "--output", str(scored)]
    code, _, err = run(capsys, *args, "--on-error", "skip")
    assert code == 2
    said = " ".join(err.split())
    assert f"{scored} already exists" in said
    assert "give another --output, or add --force to replace it" in said
    assert scored.read_text() == THEIRS
    assert not source.with_name("scored.errors.csv").exists()  # nothing scored, nothing listed
    assert _ours(source.parent) == []
    code, _, err = run(capsys, *args, "--on-error", "skip", "--force")
    assert code == 0, err
    assert [r["prediction"] for r in csv.DictReader(scored.read_text().splitlines())] == [
        "setosa",
        "virginica",
    ]


def test_an_existing_errors_file_is_refused_unless_forced_or_elsewhere(
    capsys: pytest.CaptureFixture[str], iris_repo: Path, source: Path
) -> None:
    scored, listed = source.with_name("scored.csv"), source.with_name("scored.errors.csv")
    listed.write_text(THEIRS)
    args = ["predict", str(iris_repo), "--input", str(source), "--output", str(scored)]
    code, _, err = run(capsys, *args, "--on-error", "skip")
    assert code == 2
    said = " ".join(err.split())
    assert f"{listed} already exists" in said
    assert "give another --errors, or add --force to replace it" in said
    assert (listed.read_text(), scored.exists()) == (THEIRS, False)
    elsewhere = source.with_name("bad-rows.csv")
    code, _, err = run(capsys, *args, "--on-error", "skip", "--errors", str(elsewhere))
    assert code == 0, err
    assert listed.read_text() == THEIRS
    assert [r["column"] for r in csv.DictReader(elsewhere.read_text().splitlines())] == [
        "sepal_width"
    ]
    scored.unlink()
    code, _, err = run(capsys, *args, "--on-error", "skip", "--force")
    assert code == 0, err
    assert [r["reason"] for r in csv.DictReader(listed.read_text().splitlines())] == [
        "missing value"
    ]


def test_without_skip_the_errors_file_is_not_in_the_way(
    capsys: pytest.CaptureFixture[str], iris_repo: Path, source: Path
) -> None:
    """``--on-error fail`` writes no errors file, so one that exists does not matter."""
    source.write_text(f"{HEADER}\n5.1,3.5,1.4,0.2\n")
    scored, listed = source.with_name("scored.jsonl"), source.with_name("scored.errors.csv")
    listed.write_text(THEIRS)
    code, _, err = run(
        capsys, "predict", str(iris_repo), "--input", str(source), "--output", str(scored)
    )
    assert code == 0, err
    assert listed.read_text() == THEIRS
    assert '"prediction": "setosa"' in scored.read_text()


def test_a_file_made_while_scoring_is_not_replaced(tmp_path: Path) -> None:
    """The final steps are exclusive: the output and the errors file are each linked into place
    from a partial file of our own; a file that appeared after the first check is kept, and our
    partial is not."""
    output = tmp_path / "scored.csv"
    output.write_text(THEIRS)
    descriptor, name = tempfile.mkstemp(dir=tmp_path, suffix=".partial")
    partial = Path(name)
    with open(descriptor, "w") as handle:
        handle.write("prediction\nsetosa\n")
    with pytest.raises(ConfigError, match="give another --output, or add --force"):
        _publish(partial, output, force=False)
    assert output.read_text() == THEIRS
    _publish(partial, output, force=True)
    assert output.read_text() == "prediction\nsetosa\n"
    listed = tmp_path / "scored.errors.csv"
    listed.write_text(THEIRS)
    bad = [BadRow(1, 3, "sepal_width", None, "missing value")]
    with (
        pytest.raises(ConfigError, match="give another --errors, or add --force"),
        _replaced(listed, False, "--errors") as handle,
    ):
        BadRows(handle).add(bad)
    assert listed.read_text() == THEIRS
    assert not _ours(tmp_path)  # our partial is gone
    with _replaced(listed, True, "--errors") as handle:
        BadRows(handle).add(bad)
    assert "1,3,sepal_width,,missing value" in listed.read_text()


def test_the_errors_file_is_streamed_and_written_only_when_a_row_is_left_out(
    capsys: pytest.CaptureFixture[str], iris_repo: Path, tmp_path: Path
) -> None:
    """Bad rows go to a partial file as they come (memory does not grow with them), which
    becomes the errors file only at the end, and only when a row was left out."""
    clean = tmp_path / "clean.csv"
    clean.write_text(f"{HEADER}\n5.1,3.5,1.4,0.2\n")
    scored = tmp_path / "scored.csv"
    args = ["predict", str(iris_repo), "--input", str(clean), "--output", str(scored)]
    code, _, err = run(capsys, *args, "--on-error", "skip")
    assert code == 0, err
    assert scored.is_file()
    assert not (tmp_path / "scored.errors.csv").exists()
    assert not _ours(tmp_path)
