from __future__ import annotations

from pathlib import Path

import pytest

from modelport import runtimes
from modelport.core.registry import ModelState, Registry
from modelport.core.repository import scan
from modelport.errors import CardError, ConfigError, ModelNotFound, ModelNotReady
from tests.helpers import write_fake_model


def loaded(path: Path, **kwargs: object) -> Registry:
    registry = Registry(scan(path), **kwargs)  # type: ignore[arg-type]
    registry.load_all()
    return registry


def test_highest_version_is_default(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2, 10))
    registry = loaded(tmp_path)
    assert registry.get("m").version == 10
    assert registry.get("m", 2).version == 2
    assert registry.ready


def test_card_pins_default_version(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2), default_version=1)
    assert loaded(tmp_path).get("m").version == 1


def test_a_failed_highest_version_falls_back_to_the_highest_ready(tmp_path: Path) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,))
    (folder / "2").mkdir()
    registry = loaded(tmp_path)
    assert registry.get("m").version == 1
    assert not registry.ready
    assert registry.models["m"].versions[2].state is ModelState.FAILED
    with pytest.raises(ModelNotReady, match="no model file found"):
        registry.get("m", 2)


def test_one_bad_model_does_not_stop_the_others(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "bad", parameters={"load_error": "boom"})
    write_fake_model(tmp_path, "good")
    write_fake_model(tmp_path, "alien", runtime="tensorflow")
    registry = loaded(tmp_path)
    assert registry.get("good").name == "good"
    with pytest.raises(ModelNotReady, match="boom"):
        registry.get("bad")
    with pytest.raises(ModelNotReady, match="unknown runtime 'tensorflow'"):
        registry.get("alien")


def test_missing_extra_gets_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = runtimes._entry_points()
    monkeypatch.setattr(  # as if modelport[torch] were not installed
        runtimes, "_entry_points", lambda: {k: v for k, v in installed.items() if k != "torch"}
    )
    write_fake_model(tmp_path, "m", runtime="torch")
    with pytest.raises(ModelNotReady, match=r"pip install 'modelport\[torch\]'"):
        loaded(tmp_path).get("m")


def test_default_model_is_the_first_or_the_chosen_one(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "b")
    write_fake_model(tmp_path, "a")
    assert loaded(tmp_path).get(None).name == "a"
    assert loaded(tmp_path, default_model="b").get(None).name == "b"
    with pytest.raises(ConfigError, match="default model 'c' is not in the repository"):
        Registry(scan(tmp_path), default_model="c")


def test_unknown_names_and_versions_are_404(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "m")
    registry = loaded(tmp_path)
    with pytest.raises(ModelNotFound, match="models served here: m"):
        registry.get("x")
    with pytest.raises(ModelNotFound, match="versions: 1"):
        registry.get("m", 3)


def test_duplicate_names_fail_alone(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "a", name="same")
    write_fake_model(tmp_path, "b", name="same")
    write_fake_model(tmp_path, "c")
    registry = loaded(tmp_path)
    assert registry.get("c") is not None  # the healthy model serves
    for name in ("a", "b"):
        with pytest.raises(ModelNotReady, match="all name their model 'same'"):
            registry.get(name)
    sources = scan(tmp_path)
    with pytest.raises(ConfigError, match="two models are named 'c'"):  # built by hand: refused
        Registry([*sources, sources[-1]])


def test_unload(tmp_path: Path) -> None:
    write_fake_model(tmp_path, "m")
    registry = loaded(tmp_path)
    registry.unload_all()
    with pytest.raises(ModelNotReady):
        registry.get("m")


def test_a_card_that_breaks_after_start_fails_its_reload_only(tmp_path: Path) -> None:
    """Readiness per setting at start; a reload of the broken model raises its card error and
    what it served serves on; the other model reloads; a renamed model is found by its folder."""
    write_fake_model(tmp_path, "a")
    write_fake_model(tmp_path, "b", name="renamed")
    write_fake_model(tmp_path, "c")
    (tmp_path / "c" / "modelport.yaml").write_text("batching: {max_batch_size: 0}\n")
    strict = loaded(tmp_path, origin=tmp_path)
    assert not strict.ready
    assert strict.default_model == "a"
    assert "max_batch_size" in (strict.models["c"].versions[1].error or "")
    assert loaded(tmp_path, strict_readiness=False).ready
    (tmp_path / "b" / "modelport.yaml").write_text("runtime: [unclosed\n")
    with pytest.raises(CardError, match="not valid YAML"):
        strict.reload("renamed")
    assert strict.get("renamed").version == 1  # the old version keeps serving
    assert strict.reload("a").ready
