"""``modelport pin``: pins what is on disk now, and never silently re-pins a changed file."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.cli.pin import PinRow, pin_repository
from modelport.errors import ModelNotFound
from modelport.model.manifest import MANIFEST, verify_folder
from modelport.model.pins import Pins, read_signature
from tests.helpers import write_fake_model


def _statuses(rows: list[PinRow]) -> dict[str, str]:
    return {row.path: row.status for row in rows}


def test_pin_then_unchanged_then_refused_then_forced(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    write_fake_model(repo, "a", versions=(1, 2))
    pins = Pins.default(repo)
    assert set(_statuses(pin_repository(repo, pins)).values()) == {"pinned"}
    assert set(pins.read()) == {"models/a/1/model.fake", "models/a/2/model.fake"}  # lock-relative
    assert set(_statuses(pin_repository(repo, pins)).values()) == {"unchanged"}
    (repo / "a" / "2" / "model.fake").write_text("changed\n")
    rows = pin_repository(repo, pins)
    assert _statuses(rows)["a/2/model.fake"] == "refused"
    assert "changed since it was pinned" in rows[1].detail
    assert _statuses(pin_repository(repo, pins, force=True))["a/2/model.fake"] == "pinned"


def test_a_stale_sidecar_is_a_reason_to_refuse(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    write_fake_model(repo, "a")
    (repo / "a" / "1" / "model.fake.sha256").write_text(f"{'0' * 64}  model.fake\n")
    (row,) = pin_repository(repo, Pins.default(repo))
    assert row.status == "refused"
    assert "sidecar pins another sha256" in row.detail


def test_a_folder_model_is_pinned_whole_and_signed(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    folder = write_fake_model(repo, "bert", runtime="transformers")
    (folder / "1" / "config.json").write_text("{}")
    write_fake_model(repo, "other")
    pins = Pins.for_path(repo, tmp_path / "state" / "pins.lock", key="k")
    rows = pin_repository(repo, pins, model="bert")
    assert _statuses(rows) == {"bert/1/": "pinned"}
    assert read_signature(folder / "1" / MANIFEST) is not None
    verify_folder(folder / "1", Pins(repo, tmp_path / "none.lock", b"k"))  # the signature
    verify_folder(folder / "1", Pins(repo, pins.lock))  # the lock
    with pytest.raises(ModelNotFound):
        pin_repository(repo, pins, model="nope")
