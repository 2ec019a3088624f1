"""Pinned sha256 hashes for a model that is a folder of files (a ``save_pretrained`` folder).

A single-file artifact pins its hash in a ``<file>.sha256`` sidecar
(:mod:`modelport.model.integrity`);
a folder pins every file in one manifest, ``MANIFEST.sha256`` (``sha256sum`` format, so
``sha256sum -c MANIFEST.sha256`` checks it too). When the manifest is there, the folder loads only
if every listed file still has its hash and no file was added beside them.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from modelport.errors import UntrustedArtifact

__all__ = ["MANIFEST", "copy_folder", "verify_manifest", "write_manifest"]

MANIFEST = "MANIFEST.sha256"


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    )


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def write_manifest(folder: Path) -> Path:
    """Hash every file under ``folder`` into ``folder/MANIFEST.sha256``."""
    lines = [f"{_digest(p)}  {p.relative_to(folder).as_posix()}\n" for p in _files(folder)]
    target = folder / MANIFEST
    target.write_text("".join(lines), encoding="utf-8")
    return target


def _read(manifest: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise UntrustedArtifact(f"{manifest}: line {number} is not '<sha256>  <file>'")
        pins[name.strip()] = digest.lower()
    return pins


def verify_manifest(folder: Path) -> bool:
    """Check ``folder`` against its manifest; ``False`` when it has none.

    Raises :class:`UntrustedArtifact` naming the first file that changed, vanished or was added.
    """
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    pins = _read(manifest)
    present = {p.relative_to(folder).as_posix(): p for p in _files(folder)}
    added = sorted(set(present) - set(pins))
    if added:
        raise UntrustedArtifact(f"{folder}: {added[0]} is not in {MANIFEST}; it was added later")
    for name, pinned in pins.items():
        path = present.get(name)
        if path is None:
            raise UntrustedArtifact(f"{folder}: {name}, pinned in {MANIFEST}, is missing")
        digest = _digest(path)
        if digest != pinned:
            raise UntrustedArtifact(
                f"{folder}: {name} has sha256 {digest} but {MANIFEST} pins {pinned}; "
                "it changed after it was written"
            )
    return True


def copy_folder(source: Path, target: Path) -> Path:
    """Copy the files of ``source`` into ``target`` (created) and pin them in a manifest."""
    target.mkdir(parents=True, exist_ok=True)
    for path in _files(source):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    return write_manifest(target)
