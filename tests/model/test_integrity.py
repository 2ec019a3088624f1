from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from modelport.errors import UntrustedArtifact
from modelport.model.integrity import (
    is_trusted,
    pin_artifact,
    pinned_sha256,
    read_verified,
    refusals,
    verify_pinned,
    write_sha256,
)
from modelport.model.manifest import pin_folder
from modelport.model.pins import Pins, TrustPolicy


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "m" / "1" / "model.joblib"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"pretend pickle")
    return path


@pytest.fixture
def pins(tmp_path: Path) -> Pins:
    return Pins.for_path(tmp_path / "models")


def test_sidecar_is_sha256sum_format(artifact: Path) -> None:
    digest = write_sha256(artifact)
    assert digest == hashlib.sha256(b"pretend pickle").hexdigest()
    assert (artifact.parent / "model.joblib.sha256").read_text() == f"{digest}  model.joblib\n"
    assert pinned_sha256(artifact) == digest


def test_pinned_file_loads(artifact: Path, pins: Pins) -> None:
    digest = pin_artifact(artifact, pins)
    assert pins.lock == artifact.parents[3] / "modelport.lock"  # beside the repository
    assert pins.read() == {"models/m/1/model.joblib": digest}  # relative to the lock
    assert read_verified(artifact, trusted=False, pins=pins) == b"pretend pickle"


def test_a_sidecar_alone_is_integrity_not_trust(artifact: Path, pins: Pins) -> None:
    write_sha256(artifact)  # what anyone who can write the folder can do
    with pytest.raises(UntrustedArtifact) as info:
        read_verified(artifact, trusted=False, pins=pins)
    message = info.value.message
    assert "no trusted pin vouches for it" in message
    assert "proves integrity only" in message
    assert "unpickling runs any code" in message
    assert f"modelport pin {artifact.parents[2]}" in message  # the exact command
    assert f"--trust {artifact}" in message


def test_unpinned_file_is_refused_with_why_and_how(artifact: Path, pins: Pins) -> None:
    with pytest.raises(UntrustedArtifact) as info:
        read_verified(artifact, trusted=False, pins=pins)
    assert "no trusted pin vouches for it" in info.value.message
    assert f"not in {pins.lock}" in info.value.message


def test_changed_file_is_refused(artifact: Path, pins: Pins) -> None:
    pin_artifact(artifact, pins)
    artifact.write_bytes(b"tampered")
    write_sha256(artifact)  # the attacker rewrites the sidecar too
    with pytest.raises(UntrustedArtifact, match="changed since it was pinned") as info:
        read_verified(artifact, trusted=False, pins=pins)
    assert "--force" in info.value.message  # re-pinning a changed file is deliberate


def test_a_pinned_hash_is_trusted_wherever_the_file_lies(artifact: Path, pins: Pins) -> None:
    pin_artifact(artifact, pins)
    moved = artifact.parents[1] / "2" / "model.joblib"
    moved.parent.mkdir()
    moved.write_bytes(artifact.read_bytes())  # a copy of the repository keeps its pins
    assert read_verified(moved, trusted=False, pins=pins) == b"pretend pickle"


def test_trusted_file_loads_whatever_its_hash(artifact: Path) -> None:
    write_sha256(artifact)
    artifact.write_bytes(b"tampered")
    assert read_verified(artifact, trusted=True) == b"tampered"


def test_trust_covers_the_file_or_a_folder_above(artifact: Path, tmp_path: Path) -> None:
    assert is_trusted(artifact, [artifact])
    assert is_trusted(artifact, [tmp_path])
    assert not is_trusted(artifact, [tmp_path / "other"])
    assert not is_trusted(artifact, [])


def test_refusals_list_only_what_would_be_refused(artifact: Path, pins: Pins) -> None:
    other = artifact.with_name("other.pkl")
    other.write_bytes(b"other")
    pin_artifact(artifact, pins)
    found = refusals([artifact, other], TrustPolicy((), pins))
    assert [str(e.message).split(":")[0] for e in found] == [f"refusing to load {other}"]
    assert refusals([artifact, other], TrustPolicy((other,), pins)) == []


@pytest.fixture
def onnx(tmp_path: Path) -> Path:
    """A file of a format that runs no code when loaded."""
    path = tmp_path / "models" / "m" / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"pretend onnx")
    return path


def test_an_unpinned_file_of_a_non_code_format_loads(onnx: Path, pins: Pins) -> None:
    verify_pinned(onnx, trusted=False, pins=pins)  # no lock line, no sidecar: nothing to check
    verify_pinned(onnx, trusted=False, pins=None)


def test_a_pinned_file_of_any_format_loads_only_as_pinned(onnx: Path, pins: Pins) -> None:
    pin_artifact(onnx, pins)
    verify_pinned(onnx, trusted=False, pins=pins)
    onnx.write_bytes(b"tampered onnx")
    (onnx.parent / "model.onnx.sha256").unlink()  # the folder's writer removes the sidecar too
    with pytest.raises(UntrustedArtifact, match="changed since it was pinned") as info:
        verify_pinned(onnx, trusted=False, pins=pins)
    message = info.value.message
    assert "loads a pinned file only as it was pinned" in message
    assert "unpickling" not in message
    assert "--force" in message
    verify_pinned(onnx, trusted=True, pins=pins)  # --trust: loaded as it is


def test_a_sidecar_is_checked_when_the_lock_pins_nothing(onnx: Path, pins: Pins) -> None:
    write_sha256(onnx)
    verify_pinned(onnx, trusted=False, pins=pins)  # integrity holds: it loads
    onnx.write_bytes(b"tampered onnx")
    with pytest.raises(UntrustedArtifact, match="changed after it was pinned"):
        verify_pinned(onnx, trusted=False, pins=pins)


def test_a_signed_sidecar_must_verify_under_the_key(onnx: Path, tmp_path: Path) -> None:
    signed = Pins.for_path(tmp_path / "models", tmp_path / "no.lock", key="k")
    write_sha256(onnx, b"k")
    verify_pinned(onnx, trusted=False, pins=signed)
    onnx.write_bytes(b"tampered onnx")
    write_sha256(onnx, b"not the key")  # a matching sidecar, signed with another key
    with pytest.raises(UntrustedArtifact, match="no trusted pin vouches for it"):
        verify_pinned(onnx, trusted=False, pins=signed)


def test_pickles_are_left_to_read_verified(artifact: Path, pins: Pins) -> None:
    write_sha256(artifact)
    artifact.write_bytes(b"tampered")
    verify_pinned(artifact, trusted=False, pins=pins)  # checked on the bytes the runtime loads


def test_refusals_before_serving_cover_every_pinned_format(onnx: Path, pins: Pins) -> None:
    pin_artifact(onnx, pins)
    assert refusals([onnx], TrustPolicy((), pins)) == []
    onnx.write_bytes(b"tampered onnx")
    (found,) = refusals([onnx], TrustPolicy((), pins))
    assert "changed since it was pinned" in found.message
    assert refusals([onnx], TrustPolicy((onnx,), pins)) == []


def test_a_file_of_a_folder_pinned_whole_loads_only_as_pinned(artifact: Path, pins: Pins) -> None:
    """`modelport import models:/NAME/VERSION` pins the version's folder as a whole: its
    pickle and its other files load through the folder's pin, and only as it was pinned."""
    onnx_copy = artifact.with_name("model.onnx")
    onnx_copy.write_bytes(b"pretend onnx")
    pin_folder(artifact.parent, pins)
    assert read_verified(artifact, trusted=False, pins=pins) == b"pretend pickle"
    verify_pinned(onnx_copy, trusted=False, pins=pins)
    assert refusals([artifact, onnx_copy], TrustPolicy((), pins)) == []
    artifact.write_bytes(b"tampered")
    with pytest.raises(UntrustedArtifact, match=r"model\.joblib has sha256 .* but MANIFEST"):
        read_verified(artifact, trusted=False, pins=pins)
    with pytest.raises(UntrustedArtifact, match=r"model\.joblib has sha256"):
        verify_pinned(onnx_copy, trusted=False, pins=pins)  # its folder changed


def test_a_folder_pin_vouches_wherever_the_lock_and_folder_are_copied(tmp_path: Path) -> None:
    """A registry version frozen into ``shop/iris/1`` is pinned as ``shop/iris/1/``; the image
    copies the folder to ``/models/iris/1`` and the lock to ``/modelport.lock``: its pickle still
    loads (the tree digest is what is pinned), and not once a file of the folder changed."""
    folder = tmp_path / "build" / "shop" / "iris" / "1"
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(b"pickled bytes")
    pin_folder(folder, Pins(tmp_path / "build" / "shop", tmp_path / "build" / "modelport.lock"))
    image = tmp_path / "image"
    (image / "models" / "iris").mkdir(parents=True)
    shutil.copytree(folder, image / "models" / "iris" / "1")
    shutil.copyfile(tmp_path / "build" / "modelport.lock", image / "modelport.lock")
    pins = Pins(image / "models", image / "modelport.lock")
    copied = image / "models" / "iris" / "1" / "model.pkl"
    assert read_verified(copied, trusted=False, pins=pins) == b"pickled bytes"
    copied.write_bytes(b"other bytes")
    with pytest.raises(UntrustedArtifact):
        read_verified(copied, trusted=False, pins=pins)
