"""Pinned sha256 hashes for model files, and the refusal to unpickle anything not vouched for.

Unpickling runs whatever code the file carries. modelport records an artifact's sha256 in a
``<file>.sha256`` sidecar (``sha256sum`` format) when it writes the artifact itself, but a
sidecar proves integrity only: whoever can write the folder can write a matching one. So a
pickle, joblib or torch file loads only when a *trusted* pin vouches for its bytes
(:mod:`modelport.model.pins`: the lock file outside the repository, or a signature under
``MODELPORT_PIN_KEY``), or when the user trusts the path explicitly (``--trust``).

Every other model file (ONNX, XGBoost JSON/UBJ, LightGBM text, skops, a third-party runtime's
file) runs no code when loaded, so it needs no pin to load; but once pinned (a lock line at its
path, a sidecar, or a signature) it loads only as it was pinned: :func:`verify_pinned`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from modelport.errors import UntrustedArtifact
from modelport.hints import pin, trust
from modelport.model.digest import file_sha256
from modelport.model.manifest import folder_pinned, folder_vouches, verify_folder
from modelport.model.pins import Pins, TrustPolicy, read_signature, signature_line

__all__ = [
    "PICKLE_SUFFIXES",
    "is_trusted",
    "pin_artifact",
    "pinned_sha256",
    "read_verified",
    "refusals",
    "verify_pinned",
    "write_sha256",
]

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pt2")  # torch archives hold pickles
WHY = "unpickling runs any code the file contains, so modelport loads it only when a trusted pin "
WHY += "vouches for it"
WHY_PINNED = "it is pinned, and modelport loads a pinned file only as it was pinned"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_sha256(path: Path, key: bytes | None = None) -> str:
    """Write ``path``'s sidecar (signed when ``key`` is given); returns the sha256."""
    digest = file_sha256(path)
    signature = signature_line(key, digest) if key else ""
    sidecar(path).write_text(f"{digest}  {path.name}\n{signature}", encoding="utf-8")
    return digest


def pin_artifact(path: Path, pins: Pins) -> str:
    """Pin ``path`` as trusted: its sidecar (signed when the key is set) and its lock line."""
    digest = write_sha256(path, pins.key)
    pins.write({pins.relative(path): digest})
    return digest


def pinned_sha256(path: Path) -> str | None:
    pin = sidecar(path)
    if not pin.is_file():
        return None
    text = pin.read_text(encoding="utf-8").split()
    return text[0].lower() if text else None


def is_trusted(path: Path, trusted: Iterable[Path]) -> bool:
    """Whether the user trusts ``path``: it, or a folder above it, was passed with ``--trust``."""
    return TrustPolicy.of(trusted).trusts(path)


def _reason(path: Path, digest: str, pins: Pins | None) -> tuple[str, bool]:
    """Why ``path`` is refused, and whether it changed since a pin was taken."""
    side = pinned_sha256(path)
    locked = pins.read().get(pins.relative(path)) if pins is not None else None
    where = f"not in {pins.lock}" if pins is not None else "no pins were given"
    if pins is not None and pins.key is not None:
        where += " nor signed with MODELPORT_PIN_KEY"
    if locked is not None:
        return f"it changed since it was pinned (sha256 {digest}, pinned {locked})", True
    if side is not None and side != digest:
        name = sidecar(path).name
        return f"it changed after it was pinned (sha256 {digest}, {name} says {side})", True
    if side is not None:
        return (
            f"no trusted pin vouches for it ({where}); its sidecar {sidecar(path).name} matches, "
            "but a sidecar beside the file proves integrity only, as whoever can write the "
            "folder can rewrite both",
            False,
        )
    return f"no trusted pin vouches for it ({where})", False


def refusal(path: Path, digest: str, pins: Pins | None, why: str = WHY) -> UntrustedArtifact:
    """The error for a file no trusted pin vouches for: why, and the exact command to pin it."""
    reason, changed = _reason(path, digest, pins)
    command = pins.command() if pins is not None else pin(path)
    if changed:
        advice = (
            f"Check where it came from. If you trust it as it is now, pin it again: {command} "
            f"--force\n  or load it as it is, unpinned: {trust(path)}"
        )
    else:
        advice = (
            f"If you trust it, pin it: {command}\n  or load it as it is, unpinned: {trust(path)}"
        )
    return UntrustedArtifact(f"refusing to load {path}: {reason}; {why}.\n  {advice}")


def read_verified(path: Path, *, trusted: bool, pins: Pins | None = None) -> bytes:
    """The bytes of a pickle-based artifact, refused unless a trusted pin vouches for them or
    the user trusts the path.

    The bytes hashed are the bytes returned, so the file cannot change between check and load.
    """
    data = path.read_bytes()
    if trusted:
        return data
    digest = sha256_of(data)
    if _vouched(path, digest, pins):
        return data
    raise _refused(path, digest, pins, WHY)


def _vouched(path: Path, digest: str, pins: Pins | None) -> bool:
    """Whether a trusted pin vouches for ``path``'s bytes: its own, or its folder's (a folder
    pinned as a whole, as ``modelport import models:/...`` pins a registry version)."""
    if pins is None:
        return False
    return pins.vouches(digest, sidecar(path)) or folder_vouches(path, digest, pins)


def _refused(path: Path, digest: str, pins: Pins | None, why: str) -> UntrustedArtifact:
    """The refusal; for a file of a pinned folder, the folder's (it names what changed)."""
    if folder_pinned(path, pins):
        try:
            verify_folder(path.parent, pins)
        except UntrustedArtifact as exc:
            return exc
    return refusal(path, digest, pins, why)


def refusals(paths: Iterable[Path], policy: TrustPolicy) -> list[UntrustedArtifact]:
    """The refusals, before anything loads, of every file among ``paths`` that would be
    refused: a pickle no trusted pin vouches for, a pinned file of another format that changed."""
    found = []
    for path in paths:
        if not path.is_file() or policy.trusts(path):
            continue
        if path.suffix.lower() not in PICKLE_SUFFIXES:
            try:
                verify_pinned(path, trusted=False, pins=policy.pins)
            except UntrustedArtifact as exc:
                found.append(exc)
            continue
        digest = sha256_of(path.read_bytes())
        if not _vouched(path, digest, policy.pins):
            found.append(_refused(path, digest, policy.pins, WHY))
    return found


def verify_pinned(path: Path, *, trusted: bool, pins: Pins | None) -> None:
    """Refuse a model file that runs no code on load (ONNX, XGBoost, LightGBM, skops) when it
    is pinned and no longer matches its pin; an unpinned one loads as it is.

    Pinned means a lock line at its path or its folder's, a sidecar, or a signature under the
    key. It then loads only when a trusted pin vouches for its bytes, or when it matches its
    unsigned sidecar and the lock pins nothing at its path or folder (integrity only). Pickles
    are checked by :func:`read_verified` on the very bytes they load, folder models by their
    manifest.
    """
    if trusted or not path.is_file() or path.suffix.lower() in PICKLE_SUFFIXES:
        return
    locked = pins.read().get(pins.relative(path)) if pins is not None else None
    side = pinned_sha256(path)
    in_folder = folder_pinned(path, pins)
    if locked is None and side is None and not in_folder:
        return
    digest = file_sha256(path)
    if _vouched(path, digest, pins):
        return
    signed = pins is not None and pins.key is not None and read_signature(sidecar(path)) is not None
    if locked is None and not in_folder and side == digest and not signed:
        return
    raise _refused(path, digest, pins, WHY_PINNED)
