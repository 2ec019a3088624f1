"""What a caller may read of a server-side message: no absolute paths, no hashes.

Load errors, integrity failures and repository messages name files by their absolute path and
quote sha256 values. The server's log keeps them whole; an answer shows the last parts of each
path (``.../iris/1/model.joblib``: the model, the version, the file) and ``<sha256>`` for a hash,
so an anonymous caller learns which model failed and why, not where the server keeps its files.
"""

from __future__ import annotations

import re

__all__ = ["redact"]

_KEPT_PARTS = 3
_SHA256 = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
# an absolute POSIX path: a "/" that starts a word (not inside a URL or a relative path), then
# at least two parts
_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s'\"/:;,()\[\]{}<>]+/)+[^\s'\"/:;,()\[\]{}<>]*")


def _tail(found: re.Match[str]) -> str:
    parts = [p for p in found.group(0).split("/") if p]
    if len(parts) <= _KEPT_PARTS:
        return found.group(0) if len(parts) < 2 else ".../" + "/".join(parts)
    return ".../" + "/".join(parts[-_KEPT_PARTS:])


def redact(message: str) -> str:
    """``message`` with absolute paths cut to their last parts and sha256 values hidden."""
    if "/" not in message and len(message) < 64:
        return message
    return _PATH.sub(_tail, _SHA256.sub("<sha256>", message))
