from __future__ import annotations

from pathlib import Path

import pytest

from modelport.core.repository import scan
from modelport.core.versions import add_version
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
    [("missing", "no such file or folder"), ("empty", "empty model repository")],
)
def test_broken_repositories_are_explained(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "repo"
    if layout != "missing":
        root.mkdir()
    with pytest.raises(ConfigError, match=message):
        scan(root)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("no_versions", "no version folders"),
        ("bad_name", "invalid model name"),
        ("bad_yaml", "not valid YAML"),
        ("bad_field", "batching.max_batch_size: Input should be greater than or equal to 1"),
    ],
)
def test_a_broken_model_fails_alone_with_its_reason(
    tmp_path: Path, layout: str, message: str
) -> None:
    root = tmp_path / "repo"
    write_fake_model(root, "good")
    if layout == "no_versions":
        (root / "m").mkdir()
        (root / "m" / "notes").mkdir()
    else:
        folder = write_fake_model(root, "m", versions=(1, 2))
        card = {
            "bad_name": "name: has space\n",
            "bad_yaml": "runtime: [unclosed\n",
            "bad_field": "batching: {max_batch_size: 0}\n",
        }[layout]
        (folder / "modelport.yaml").write_text(card)
    good, broken = scan(root)
    assert good.error is None
    assert broken.name == "m"
    assert broken.error is not None
    assert message in broken.error.message
    expected = (
        {1: root / "m"} if layout == "no_versions" else {1: root / "m" / "1", 2: root / "m" / "2"}
    )
    assert broken.versions == expected
    assert all(message in problem for problem in broken.problems.values())


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


def test_two_cards_claiming_one_name_fail_alone(tmp_path: Path) -> None:
    """Neither of two folders whose cards give the same name serves under it (which one would be
    a guess); both are listed under their folders' names with the reason, the rest serve."""
    root = tmp_path / "repo"
    write_fake_model(root, "a", name="shared")
    write_fake_model(root, "b", name="shared")
    write_fake_model(root, "good")
    write_fake_model(root, "x", name="a")  # a served model already named like folder a
    sources = {source.name: source for source in scan(root)}
    assert sorted(sources) == ["a", "a-2", "b", "good"]
    assert sources["good"].error is None
    assert sources["a"].error is None  # folder x, whose card names it a: served as named
    assert sources["a"].folder == root / "x"
    for name, folder in (("a-2", "a"), ("b", "b")):
        error = sources[name].error
        assert error is not None
        assert sources[name].folder == root / folder
        assert "a/, b/ all name their model 'shared'" in error.message
    from modelport.core.registry import Registry

    registry = Registry(scan(root))  # no longer refuses to start
    assert set(registry.models) == {"a", "a-2", "b", "good"}
