"""Pinned sha256 hashes for model files, and the refusal to unpickle anything unpinned.

Unpickling runs whatever code the file carries. modelport records an artifact's sha256 in a
``<file>.sha256`` sidecar (``sha256sum`` format) when it writes the artifact itself
(``modelport import``, ``modelport examples train``), and loads a pickle or joblib file only
when the file still has that hash, or when the user trusts the path explicitly (``--trust``).
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable
from pathlib import Path

from modelport.errors import UntrustedArtifact

__all__ = [
    "PICKLE_SUFFIXES",
    "check_trusted",
    "is_trusted",
    "pinned_sha256",
    "read_verified",
    "write_sha256",
]

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pt2")  # torch archives hold pickles


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_sha256(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar(path).write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return digest


def pinned_sha256(path: Path) -> str | None:
    pin = sidecar(path)
    if not pin.is_file():
        return None
    text = pin.read_text(encoding="utf-8").split()
    return text[0].lower() if text else None


def is_trusted(path: Path, trusted: Iterable[Path]) -> bool:
    """Whether the user trusts ``path``: it, or a folder above it, was passed with ``--trust``."""
    target = path.resolve()
    for item in trusted:
        root = item.resolve()
        if target == root or root in target.parents:
            return True
    return False


def _advice(path: Path) -> str:
    """The two ways out, as commands: pin the file's hash (in place when it already is a
    version of a model in a repository), or trust it as it is."""
    quoted = shlex.quote(str(path))
    version = path.parent
    if version.name.isdigit() and version.parent.name:  # <repo>/<model>/<version>/<file>
        model = version.parent
        where = f"--name {shlex.quote(model.name)} --repo {shlex.quote(str(model.parent))}"
        pin = (
            f"pin its hash where it is: modelport import {quoted} {where} --version {version.name}"
        )
    else:
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip("-.") or "model"
        pin = (
            "copy it into the repository models/ with its hash pinned: "
            f"modelport import {quoted} --name {name} --repo models"
        )
    return (
        f"If you trust this file, {pin}\n"
        f"  or load it as it is, unpinned: add --trust {quoted} to the command"
    )


def read_verified(path: Path, *, trusted: bool) -> bytes:
    """The bytes of a pickle-based artifact, refused unless its hash is pinned or it is trusted.

    The bytes hashed are the bytes returned, so the file cannot change between check and load.
    """
    data = path.read_bytes()
    if trusted:
        return data
    pinned = pinned_sha256(path)
    why = (
        "unpickling runs any code the file contains, so modelport only loads files it can vouch for"
    )
    if pinned is None:
        raise UntrustedArtifact(
            f"refusing to load {path}: it has no pinned sha256 ({sidecar(path).name} is missing), "
            f"and {why}.\n  {_advice(path)}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned:
        raise UntrustedArtifact(
            f"refusing to load {path}: its sha256 is {digest} but {sidecar(path).name} pins "
            f"{pinned}; the file changed after it was imported, and {why}.\n  {_advice(path)}"
        )
    return data


def check_trusted(paths: Iterable[Path], trusted: Iterable[Path]) -> None:
    """Refuse, before anything is served, every pickle-based file that would be refused at load."""
    roots = list(trusted)
    for path in paths:
        if path.suffix.lower() in PICKLE_SUFFIXES and path.is_file():
            read_verified(path, trusted=is_trusted(path, roots))
