"""Trusted pins: the lock file outside the repository and signatures under MODELPORT_PIN_KEY."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelport.errors import UntrustedArtifact
from modelport.model.integrity import pin_artifact, read_verified, write_sha256
from modelport.model.manifest import MANIFEST, pin_folder, tree_digest, verify_folder
from modelport.model.pins import Pins
from modelport.settings import Settings


def _file(tmp_path: Path, data: bytes = b"weights") -> Path:
    path = tmp_path / "models" / "m" / "1" / "model.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_signed_sidecar_is_trusted_without_a_lock(tmp_path: Path) -> None:
    path = _file(tmp_path)
    pins = Pins.for_path(tmp_path / "models", tmp_path / "elsewhere.lock", key="s3cret")
    write_sha256(path, pins.key)
    assert not pins.lock.exists()
    assert read_verified(path, trusted=False, pins=pins) == b"weights"
    # the signature is a comment line: sha256sum -c still reads the sidecar
    done = subprocess.run(
        ["sha256sum", "--strict", "-c", "model.pkl.sha256"], cwd=path.parent, check=False
    )
    assert done.returncode == 0


def test_a_forged_signature_or_another_key_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path)
    write_sha256(path, b"the attacker's key")
    pins = Pins.for_path(tmp_path / "models", key="s3cret")
    with pytest.raises(UntrustedArtifact, match="nor signed with MODELPORT_PIN_KEY"):
        read_verified(path, trusted=False, pins=pins)


def test_settings_name_the_lock_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_PIN_FILE", str(tmp_path / "state" / "pins.lock"))
    monkeypatch.setenv("MODELPORT_PIN_KEY", "k")
    pins = Pins.default(tmp_path / "models")
    assert pins.lock == tmp_path / "state" / "pins.lock"
    assert pins.key == b"k"
    assert f"--lock {pins.lock}" in pins.command()
    assert Pins.from_settings(Settings(models=tmp_path / "m")).lock == pins.lock


def test_the_lock_is_rewritten_whole_and_sorted(tmp_path: Path) -> None:
    pins = Pins.for_path(tmp_path / "models")
    first, second = _file(tmp_path, b"a"), _file(tmp_path, b"b").with_name("b.pkl")
    second.write_bytes(b"b")
    pin_artifact(second, pins)
    pin_artifact(first, pins)
    lines = [line for line in pins.lock.read_text().splitlines() if not line.startswith("#")]
    assert [line.split("  ")[1] for line in lines] == ["models/m/1/b.pkl", "models/m/1/model.pkl"]
    assert not list(pins.lock.parent.glob(".modelport.lock.*"))  # no temporary left


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "bert" / "1"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"tensors")
    return folder


def test_a_pinned_folder_loads_and_an_edited_one_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    pins = Pins.for_path(tmp_path / "models")
    digest = pin_folder(folder, pins)
    assert pins.read() == {"models/bert/1/": digest}  # relative to the lock's folder
    verify_folder(folder, pins)
    (folder / "config.json").write_text('{"edited": true}')
    with pytest.raises(UntrustedArtifact, match=r"config\.json has sha256"):
        verify_folder(folder, pins)


def test_a_folder_whose_manifest_was_rewritten_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    pins = Pins.for_path(tmp_path / "models")
    pin_folder(folder, pins)
    (folder / "model.safetensors").write_bytes(b"other tensors")
    pin_folder(folder, Pins.for_path(tmp_path / "models", tmp_path / "attacker.lock"))
    with pytest.raises(UntrustedArtifact, match="changed since it was pinned"):
        verify_folder(folder, pins)


def test_a_folder_without_a_trusted_pin_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    pins = Pins.for_path(tmp_path / "models")
    with pytest.raises(UntrustedArtifact, match="no trusted pin vouches") as info:
        verify_folder(folder, pins)
    assert f"modelport pin {tmp_path / 'models'}" in info.value.message
    (folder / MANIFEST).write_text(f"{tree_digest(folder)}  x\n")  # a manifest is not a pin
    with pytest.raises(UntrustedArtifact):
        verify_folder(folder, pins)


def test_a_signed_manifest_is_trusted(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    pins = Pins.for_path(tmp_path / "models", tmp_path / "none.lock", key="k")
    pin_folder(folder, pins)
    pins.lock.unlink()
    verify_folder(folder, pins)
    (folder / "extra.txt").write_text("added")
    with pytest.raises(UntrustedArtifact, match=r"extra\.txt is not in MANIFEST\.sha256"):
        verify_folder(folder, pins)


def test_repositories_side_by_side_share_the_lock_but_never_a_line(tmp_path: Path) -> None:
    """Two repositories in one folder (``models`` and ``tutorial-models``) share the default
    lock: pinning the second must not replace the first one's pin of the same model path."""
    first, second = tmp_path / "models" / "iris" / "1", tmp_path / "other" / "iris" / "1"
    for folder, content in ((first, b"first"), (second, b"second")):
        folder.mkdir(parents=True)
        (folder / "model.pkl").write_bytes(content)
    pins = [Pins.for_path(tmp_path / "models"), Pins.for_path(tmp_path / "other")]
    assert pins[0].lock == pins[1].lock
    for pin, folder in zip(pins, (first, second), strict=True):
        pin_artifact(folder / "model.pkl", pin)
    read_verified(first / "model.pkl", trusted=False, pins=pins[0])  # still pinned: no raise
    read_verified(second / "model.pkl", trusted=False, pins=pins[1])
    assert set(pins[0].read()) == {"models/iris/1/model.pkl", "other/iris/1/model.pkl"}
