"""Writing deploy files without ever destroying or overwriting what modelport did not write.

Every file modelport writes into an output folder is recorded, with its sha256, in the folder's
``.modelport-deploy.json``. Writing again replaces a file only when that record says modelport
wrote it and its content has not changed since; any other file in the way (the project's own
``Dockerfile``, ``README.md``, ``wheels/``, an edited generated file) stops the whole write
before anything is written, with the list of what would be replaced, unless ``force`` is given.
Nothing is ever deleted except files of an earlier write that are still byte-identical to what
modelport wrote, under a folder modelport fills (``models/``, ``wheels/``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from modelport.errors import ConfigError
from modelport.model.digest import file_sha256

__all__ = ["MANIFEST", "Content", "check_out", "write_files"]

MANIFEST = ".modelport-deploy.json"
Content = bytes | Path  # the bytes to write, or a file to copy


def _content_sha256(content: Content) -> str:
    if isinstance(content, Path):
        return file_sha256(content)
    return hashlib.sha256(content).hexdigest()


def _read_manifest(out: Path) -> dict[str, str]:
    path = out / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
        files = data["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not modelport's record of what it wrote: {exc}") from exc
    return {str(k): str(v) for k, v in files.items()}


def check_out(out: Path, repo: Path) -> None:
    """Refuse an output folder inside the model repository (or the repository itself)."""
    out, repo = out.resolve(), repo.resolve()
    if out == repo or repo in out.parents:
        raise ConfigError(
            f"--out {out} is inside the model repository {repo}: deploy files there would be "
            "read as models; choose a folder outside it (the project folder above it works)"
        )


def _blocked(out: Path, rel: str, manifest: Mapping[str, str]) -> str | None:
    """Why writing ``rel`` would replace something modelport did not write, or None."""
    path = out / rel
    for parent in list(reversed(Path(rel).parents))[1:]:
        if (out / parent).exists() and not (out / parent).is_dir():
            return f"{parent} (a file where modelport needs a folder)"
    if path.is_dir() and not path.is_symlink():
        return f"{rel}/ (a folder where modelport writes a file)"
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or rel not in manifest:
        return f"{rel} (not written by modelport)"
    if file_sha256(path) != manifest[rel]:
        return f"{rel} (changed since modelport wrote it)"
    return None


def _stale(
    out: Path, files: Mapping[str, Content], manifest: dict[str, str], folders: Iterable[str]
) -> None:
    """Remove files of an earlier write under ``folders`` that this write no longer holds,
    when they are still exactly what modelport wrote; forget the rest."""
    prefixes = tuple(f"{f.rstrip('/')}/" for f in folders)
    for rel in [r for r in manifest if r.startswith(prefixes) and r not in files]:
        path = out / rel
        if path.is_file() and not path.is_symlink() and file_sha256(path) == manifest[rel]:
            path.unlink()
            for parent in Path(rel).parents:
                if str(parent) == "." or any((out / parent).iterdir()):
                    break
                (out / parent).rmdir()
        del manifest[rel]


def write_files(
    out: Path,
    files: Mapping[str, Content],
    *,
    force: bool = False,
    owned_folders: Iterable[str] = (),
) -> list[Path]:
    """Write ``files`` (path relative to ``out`` -> content) and record them in the manifest.

    Raises :class:`ConfigError`, having written nothing, when one would replace a file modelport
    did not write (or one changed since), unless ``force``: then those files are replaced, and
    nothing else of the folder is touched.
    """
    manifest = _read_manifest(out) if out.is_dir() else {}
    blocked = [why for rel in sorted(files) if (why := _blocked(out, rel, manifest))]
    if any("folder" in why for why in blocked):  # --force replaces files, never folders
        force = False
    if blocked and not force:
        raise ConfigError(
            f"nothing was written: {out} holds files modelport would replace: "
            + "; ".join(blocked)
            + ". Choose another --out, or give --force to replace exactly these files"
        )
    out.mkdir(parents=True, exist_ok=True)
    _stale(out, files, manifest, owned_folders)
    written = []
    for rel, content in sorted(files.items()):
        path = out / rel
        if path.is_symlink() or path.is_file():
            path.unlink()  # only reached for our own files, or the ones --force names
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.read_bytes() if isinstance(content, Path) else content)
        manifest[rel] = _content_sha256(content)
        written.append(path)
    record = {"written_by": "modelport deploy", "files": dict(sorted(manifest.items()))}
    (out / MANIFEST).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return written
