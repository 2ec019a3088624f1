from __future__ import annotations

from pathlib import Path

import pytest

from modelport.core.repository import add_version, scan
from modelport.errors import ConfigError
from modelport.model.card import ModelCard, read_card
from tests.helpers import write_fake_model


def test_scan_repository(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "a", versions=(1, 2))
    write_fake_model(tmp_path, "b")
    sources = scan(tmp_path)
    assert [s.name for s in sources] == ["a", "b"]
    assert sorted(sources[0].versions) == [1, 2]
    assert sources[0].versions[2].name == "model.fake"


def test_scan_one_model_folder_and_one_file(tmp_path: Path) -> None:
    folder = write_fake_model(tmp_path, "solo")
    assert [s.name for s in scan(folder)] == ["solo"]
    (sources,) = scan(folder / "1" / "model.fake")
    assert sources.versions == {1: folder / "1" / "model.fake"}


def test_card_name_overrides_folder(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "folder", name="renamed")
    assert scan(tmp_path)[0].name == "renamed"


def test_version_problems_are_kept_per_version(tmp_path: Path) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,))
    (folder / "2").mkdir()
    (source,) = scan(tmp_path)
    assert "no model file found" in source.problems[2]
    assert 1 not in source.problems


def test_several_candidate_files_need_the_card_to_choose(tmp_path: Path) -> None:
    folder = write_fake_model(tmp_path, "m")
    (folder / "1" / "other.fake").write_text("x")
    (source,) = scan(tmp_path)
    assert "several model files" in source.problems[1]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "no such file or folder"),
        ("empty", "empty model repository"),
        ("no_versions", "no version folders"),
        ("bad_name", "invalid model name"),
    ],
)
def test_broken_repositories_are_explained(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "repo"
    if layout != "missing":
        root.mkdir()
    if layout == "no_versions":
        (root / "m").mkdir()
        (root / "m" / "notes").mkdir()
    if layout == "bad_name":
        write_fake_model(root, "m", name="has space")
    with pytest.raises(ConfigError, match=message):
        scan(root)


def test_add_version_pins_hash_and_numbers_versions(tmp_path: Path) -> None:
    source = tmp_path / "x.joblib"
    source.write_bytes(b"abc")
    first = add_version(tmp_path / "repo", "m", source, ModelCard(description="d"))
    second = add_version(tmp_path / "repo", "m", source, None)
    assert first == tmp_path / "repo" / "m" / "1" / "model.joblib"
    assert second.parent.name == "2"
    assert (second.parent / "model.joblib.sha256").is_file()
    assert read_card(tmp_path / "repo" / "m" / "modelport.yaml").description == "d"
    with pytest.raises(ConfigError, match="already exists"):
        add_version(tmp_path / "repo", "m", source, None, version=1)
