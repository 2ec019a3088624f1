"""Trusted pins: sha256 hashes modelport vouches for, kept where a model folder's writer cannot
forge them.

A ``<file>.sha256`` sidecar (:mod:`modelport.model.integrity`) or a ``MANIFEST.sha256`` beside the
model proves integrity only: whoever can write the version folder can write a matching sidecar.
A *trusted* pin is one of:

- a line of the **lock file**, ``modelport.lock`` beside the model repository by default
  (``MODELPORT_PIN_FILE`` moves it), written by ``modelport pin``, ``modelport import`` and
  ``modelport examples train``; keep it where the model folders' writers cannot write;
- a **signature** (HMAC-SHA256 under ``MODELPORT_PIN_KEY``) in the sidecar or manifest, as a
  ``# modelport-signature`` comment line (``sha256sum -c`` ignores it).

The lock is ``sha256sum``-shaped: ``<sha256>  <path relative to the lock's folder>``; a folder
model's line ends with ``/`` and holds its tree digest (the sha256 of its manifest's lines). A
hash pinned anywhere in the lock is trusted wherever the file now lies (a copy of the
repository keeps its pins); the path serves diagnostics and ``modelport pin``'s refusal to
re-pin a file that changed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from modelport.hints import pin
from modelport.settings import Settings

__all__ = ["LOCK_FILE", "Pins", "TrustPolicy", "default_lock", "signature_line"]

LOCK_FILE = "modelport.lock"
_SIGNATURE = "# modelport-signature hmac-sha256="
_HEADER = (
    "# modelport.lock: sha256 pins of the model files modelport trusts (`modelport pin`).\n"
    "# Keep it where whoever can write the model folders cannot. Paths: relative to this "
    "file's folder.\n"
)


def default_lock(models: Path) -> Path:
    """``modelport.lock`` beside the served path (outside the tree it serves)."""
    return models.absolute().parent / LOCK_FILE


def _mac(key: bytes, digest: str) -> str:
    return hmac.new(key, b"modelport-pin-v1\0" + digest.encode(), hashlib.sha256).hexdigest()


def signature_line(key: bytes, digest: str) -> str:
    """The comment line that signs ``digest`` in a sidecar or manifest."""
    return f"{_SIGNATURE}{_mac(key, digest)}\n"


def read_signature(path: Path) -> str | None:
    """The signature a sidecar or manifest carries, if any."""
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(_SIGNATURE):
            return line[len(_SIGNATURE) :].strip()
    return None


@dataclass(frozen=True)
class Pins:
    """The trusted pins of one repository: its lock file and, when set, the signing key."""

    root: Path
    lock: Path
    key: bytes | None = None

    @classmethod
    def for_path(cls, models: Path, lock: Path | None = None, key: str | None = None) -> Pins:
        return cls(models, lock or default_lock(models), key.encode() if key else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pins:
        key = settings.pin_key.get_secret_value() if settings.pin_key is not None else None
        return cls.for_path(settings.models, settings.pin_file, key)

    @classmethod
    def default(cls, models: Path) -> Pins:
        """The pins the environment's settings name for the repository at ``models``."""
        return cls.from_settings(Settings(models=models))

    def read(self) -> dict[str, str]:
        """The lock's pins: path (relative to the lock's folder) -> sha256."""
        if not self.lock.is_file():
            return {}
        pins: dict[str, str] = {}
        for line in self.lock.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            if line.startswith("#") or len(digest) != 64 or not name:
                continue
            pins[name.strip()] = digest.lower()
        return pins

    def relative(self, path: Path) -> str:
        """``path`` as the lock keys it: relative to the lock's folder (so that repositories side
        by side, which share the default lock, never share a key), else absolute."""
        base = self.lock.absolute().parent
        try:
            return path.absolute().relative_to(base).as_posix()
        except ValueError:
            return path.absolute().as_posix()

    def vouches(self, digest: str, signed_in: Path | None = None) -> bool:
        """Whether ``digest`` is pinned in the lock, or signed under the key in ``signed_in``."""
        if digest in self.read().values():
            return True
        if self.key is None or signed_in is None:
            return False
        mac = read_signature(signed_in)
        return mac is not None and hmac.compare_digest(mac, _mac(self.key, digest))

    def write(self, entries: dict[str, str]) -> None:
        """Add or replace ``entries`` (relative path -> sha256) in the lock, atomically."""
        pins = {**self.read(), **entries}
        text = _HEADER + "".join(f"{pins[name]}  {name}\n" for name in sorted(pins))
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.lock.with_name(f".{self.lock.name}.{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(self.lock)

    def command(self) -> str:
        """The command that pins this repository's files."""
        return pin(self.root, None if self.lock == default_lock(self.root) else self.lock)


@dataclass(frozen=True)
class TrustPolicy:
    """What a registry may load: paths the user trusts as they are (``--trust``), and pins."""

    paths: tuple[Path, ...] = ()
    pins: Pins | None = None
    _resolved: tuple[Path, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_resolved", tuple(p.resolve() for p in self.paths))

    @classmethod
    def of(cls, trusted: Iterable[Path] | TrustPolicy, pins: Pins | None = None) -> TrustPolicy:
        if isinstance(trusted, TrustPolicy):
            return trusted
        return cls(tuple(trusted), pins)

    def trusts(self, path: Path) -> bool:
        """Whether ``path``, or a folder above it, was passed with ``--trust``."""
        target = path.resolve()
        return any(target == root or root in target.parents for root in self._resolved)
