from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelport.errors import UntrustedArtifact
from modelport.model.integrity import is_trusted, pinned_sha256, read_verified, write_sha256


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"pretend pickle")
    return path


def test_sidecar_is_sha256sum_format(artifact: Path) -> None:
    digest = write_sha256(artifact)
    assert digest == hashlib.sha256(b"pretend pickle").hexdigest()
    assert (artifact.parent / "model.joblib.sha256").read_text() == f"{digest}  model.joblib\n"
    assert pinned_sha256(artifact) == digest


def test_pinned_file_loads(artifact: Path) -> None:
    write_sha256(artifact)
    assert read_verified(artifact, trusted=False) == b"pretend pickle"


def test_unpinned_file_is_refused_with_why_and_how(artifact: Path) -> None:
    with pytest.raises(UntrustedArtifact) as info:
        read_verified(artifact, trusted=False)
    message = info.value.message
    assert "no pinned sha256" in message
    assert "unpickling runs any code" in message
    assert f"modelport import {artifact} --name model" in message
    assert f"--trust {artifact}" in message


def test_changed_file_is_refused(artifact: Path) -> None:
    write_sha256(artifact)
    artifact.write_bytes(b"tampered")
    with pytest.raises(UntrustedArtifact, match="changed after it was imported"):
        read_verified(artifact, trusted=False)


def test_trusted_file_loads_whatever_its_hash(artifact: Path) -> None:
    write_sha256(artifact)
    artifact.write_bytes(b"tampered")
    assert read_verified(artifact, trusted=True) == b"tampered"


def test_trust_covers_the_file_or_a_folder_above(artifact: Path, tmp_path: Path) -> None:
    assert is_trusted(artifact, [artifact])
    assert is_trusted(artifact, [tmp_path])
    assert not is_trusted(artifact, [tmp_path / "other"])
    assert not is_trusted(artifact, [])
