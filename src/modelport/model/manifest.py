"""Pinned sha256 hashes for a model that is a folder of files (a ``save_pretrained`` folder).

A single-file artifact pins its hash in a ``<file>.sha256`` sidecar
(:mod:`modelport.model.integrity`);
a folder pins every file in one manifest, ``MANIFEST.sha256`` (``sha256sum`` format, so
``sha256sum -c MANIFEST.sha256`` checks it too). Like a sidecar, a manifest proves integrity
only. A folder model loads when a trusted pin (:mod:`modelport.model.pins`) vouches for its
*tree digest*, the sha256 of the manifest lines computed from the files on disk now: every
file's hash and name, so an edited, added or removed file changes it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from modelport.errors import UntrustedArtifact
from modelport.hints import pin, trust
from modelport.model.digest import file_sha256
from modelport.model.pins import Pins, read_signature, signature_line

__all__ = [
    "MANIFEST",
    "copy_folder",
    "folder_pinned",
    "folder_vouches",
    "pin_folder",
    "tree_digest",
    "verify_folder",
    "verify_manifest",
    "write_manifest",
]

MANIFEST = "MANIFEST.sha256"


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    )


def _listing(folder: Path) -> str:
    return "".join(
        f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in _files(folder)
    )


def tree_digest(folder: Path) -> str:
    """The sha256 of the folder's manifest lines, computed from its files now."""
    return hashlib.sha256(_listing(folder).encode()).hexdigest()


def _write(folder: Path, key: bytes | None) -> str:
    listing = _listing(folder)
    digest = hashlib.sha256(listing.encode()).hexdigest()
    signature = signature_line(key, digest) if key else ""
    (folder / MANIFEST).write_text(listing + signature, encoding="utf-8")
    return digest


def write_manifest(folder: Path, key: bytes | None = None) -> Path:
    """Hash every file under ``folder`` into ``folder/MANIFEST.sha256`` (signed with ``key``)."""
    _write(folder, key)
    return folder / MANIFEST


def pin_folder(folder: Path, pins: Pins) -> str:
    """Pin a folder model as trusted: its manifest (signed when the key is set), its lock line.
    Returns its tree digest."""
    digest = _write(folder, pins.key)
    pins.write({pins.relative(folder) + "/": digest})
    return digest


def _read(manifest: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
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
        digest = file_sha256(path)
        if digest != pinned:
            raise UntrustedArtifact(
                f"{folder}: {name} has sha256 {digest} but {MANIFEST} pins {pinned}; "
                "it changed after it was written"
            )
    return True


def verify_folder(folder: Path, pins: Pins | None) -> None:
    """Refuse a folder model no trusted pin vouches for, naming what changed when it can."""
    digest = tree_digest(folder)
    if pins is not None and pins.vouches(digest, folder / MANIFEST):
        return
    locked = pins.read().get(pins.relative(folder) + "/") if pins is not None else None
    command = pins.command() if pins is not None else pin(folder)
    changed = f"Check where it came from. If you trust it as it is now: {command} --force"
    try:
        verify_manifest(folder)  # names the file that changed, when the manifest still tells
    except UntrustedArtifact as exc:
        raise UntrustedArtifact(f"refusing to load {exc.message}.\n  {changed}") from exc
    if locked is not None:
        reason = f"its files changed since it was pinned (tree sha256 {digest}, pinned {locked})"
        advice = changed
    else:
        where = f"not in {pins.lock}" if pins is not None else "no pins were given"
        reason = f"no trusted pin vouches for it ({where})"
        if (folder / MANIFEST).is_file():
            reason += f"; its {MANIFEST} matches, but it proves integrity only"
        advice = f"If you trust it, pin it: {command}"
    raise UntrustedArtifact(
        f"refusing to load the folder {folder}: {reason}; modelport serves a folder model only "
        f"as it was pinned.\n  {advice}\n  or load it as it is, unpinned: {trust(folder)}"
    )


def folder_pinned(path: Path, pins: Pins | None) -> bool:
    """Whether the folder holding the file ``path`` is pinned as a whole (a lock line for the
    folder, or a signed manifest), as ``modelport import models:/...`` pins a registry version."""
    if pins is None:
        return False
    folder = path.parent
    if pins.relative(folder) + "/" in pins.read():
        return True
    return pins.key is not None and read_signature(folder / MANIFEST) is not None


def folder_vouches(path: Path, digest: str, pins: Pins | None) -> bool:
    """Whether the pin of the folder holding ``path`` vouches for the bytes whose sha256 is
    ``digest``: the folder's tree digest is pinned (under any key, as a file's digest is: a
    build context copies the lock beside ``/models`` whatever the repository was called), and
    lists ``path`` with that sha256."""
    if pins is None or not (path.parent / MANIFEST).is_file():
        return False
    listing = _listing(path.parent)
    tree = hashlib.sha256(listing.encode()).hexdigest()
    if not pins.vouches(tree, path.parent / MANIFEST):
        return False
    return f"{digest}  {path.name}" in listing.splitlines()


def copy_folder(
    source: Path, target: Path, pins: Pins | None = None, leave_out: frozenset[str] = frozenset()
) -> Path:
    """Copy the files of ``source`` (but those whose relative path is in ``leave_out``) into
    ``target`` (created) and pin them: a manifest, and a trusted pin when ``pins`` is given."""
    target.mkdir(parents=True, exist_ok=True)
    for path in _files(source):
        if path.relative_to(source).as_posix() in leave_out:
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    if pins is not None:
        pin_folder(target, pins)
    return target / MANIFEST if pins is not None else write_manifest(target)
