"""The sha256 of a file, read in blocks (model files can be gigabytes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256"]


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()  # hashlib.file_digest is Python 3.11+; modelport supports 3.10
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
