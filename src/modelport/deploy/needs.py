"""What a model repository needs installed, read from its files without loading them.

A pickle (or joblib file) names every class it holds as a ``GLOBAL`` or ``STACK_GLOBAL``
opcode: :func:`pickle_modules` walks the opcodes with :mod:`pickletools` (nothing is unpickled,
nothing imported) and, past the raw array bytes a joblib file interleaves, finds the rest by
their byte pattern. A ``.skops`` file lists its types (``skops.io.get_untrusted_types``); the
model card and the file's suffix name the runtime. :func:`needs` maps those modules to
modelport extras (``xgboost``, ``lightgbm``, ``torch`` ...) and to packages, pinned to the
versions installed here, where the models were made (``pandas==2.2.3``); a module no installed
package provides (a project's own code) is reported, and the image's check then fails on it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickletools
import re
import sys
import zlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from modelport.core.repository import ModelSource, served_runtime
from modelport.runtimes import EXTRAS

__all__ = ["Needs", "needs", "pickle_modules"]

# top-level module -> the modelport extra that installs it
MODULE_EXTRAS = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "transformers": "transformers",
    "onnxruntime": "onnx",
    "pandas": "pandas",
}
# module prefix -> packages it needs at predict time though the pickle may not name them:
# a ColumnTransformer that selects columns by name works on a DataFrame only.
IMPLIED = {"sklearn.compose": ("pandas",)}
_PICKLES = {".joblib", ".pkl", ".pickle"}
_IGNORED = {"modelport", "__main__", "__builtin__", "copy_reg"}  # ours, or Python 2's names
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_GLOBAL = re.compile(rb"c([A-Za-z_][A-Za-z0-9_.]{0,200})\n[A-Za-z_][A-Za-z0-9_.]{0,200}\n")
_FRAME = 0x95
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING"}


@dataclass
class Needs:
    """What the image must install for a repository's models."""

    extras: set[str] = field(default_factory=set)
    packages: dict[str, str] = field(default_factory=dict)  # distribution -> requirement
    unknown: dict[str, set[str]] = field(default_factory=dict)  # module -> model names


def _decompressed(data: bytes) -> bytes:
    """joblib's compressed formats (zlib, gzip, bz2, xz/lzma); anything else as it is."""
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)
        if data[:3] == b"BZh":
            return bz2.decompress(data)
        if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
            return lzma.decompress(data)
        if data[:1] == b"\x78":
            return zlib.decompress(data)
    except (OSError, ValueError, EOFError, lzma.LZMAError, zlib.error):
        return data
    return data


def _walk(data: bytes, found: set[str], memo: dict[int, str | None]) -> int:
    """Add the modules of the opcodes from the start of ``data``; the offset where it stopped.
    ``memo`` carries the pickle's memo across the raw bytes joblib puts between opcodes."""
    recent: list[str | None] = []
    stream = io.BytesIO(data)
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            if name == "GLOBAL" and isinstance(arg, str):
                found.add(arg.split(" ", 1)[0])
            elif name == "STACK_GLOBAL" and len(recent) >= 2 and recent[-2]:
                found.add(str(recent[-2]))
            if name in _STRINGS:
                recent.append(arg if isinstance(arg, str) else None)
            elif name in ("BINGET", "LONG_BINGET", "GET") and isinstance(arg, int):
                recent.append(memo.get(arg))
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ("BINPUT", "LONG_BINPUT", "PUT") and isinstance(arg, int):
                memo[arg] = recent[-1] if recent else None
            elif name not in ("FRAME", "PROTO"):
                recent.append(None)
            del recent[:-2]
    except (ValueError, EOFError, UnicodeDecodeError):
        pass  # joblib writes raw array bytes between opcodes
    return stream.tell()


def _next_frame(data: bytes, start: int) -> int | None:
    """The next offset that looks like a pickle FRAME opcode (joblib resumes with one)."""
    at = data.find(bytes([_FRAME]), start)
    while at != -1:
        size = int.from_bytes(data[at + 1 : at + 9], "little")
        if 0 < size <= len(data) - at - 9:
            return at
        at = data.find(bytes([_FRAME]), at + 1)
    return None


def pickle_modules(path: Path) -> set[str]:
    """The modules a pickle or joblib file's classes come from (nothing is unpickled)."""
    data = _decompressed(path.read_bytes())
    found: set[str] = set()
    memo: dict[int, str | None] = {}
    position: int | None = 0
    while position is not None and position < len(data):
        position = _next_frame(data, position + max(_walk(data[position:], found, memo), 1))
    found.update(m.group(1).decode("ascii") for m in _GLOBAL.finditer(data))  # protocol 0-3
    return {module for module in found if _MODULE.fullmatch(module)}


def _skops_modules(path: Path) -> set[str]:
    from skops.io import get_untrusted_types

    types = get_untrusted_types(file=path)
    return {"sklearn"} | {t.rsplit(".", 1)[0] for t in types}


def _modules(artifact: Path) -> set[str]:
    if artifact.is_file() and artifact.suffix in _PICKLES:
        return pickle_modules(artifact)
    if artifact.is_file() and artifact.suffix == ".skops":
        return _skops_modules(artifact)
    return set()


def _distribution(module: str) -> str | None:
    names = metadata.packages_distributions().get(module)
    return sorted(names)[0] if names else None


def _pinned(distribution: str) -> str:
    try:
        return f"{distribution}=={metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return distribution


def _add_module(result: Needs, module: str, model: str) -> None:
    top = module.split(".", 1)[0]
    for prefix, packages in IMPLIED.items():
        if module == prefix or module.startswith(prefix + "."):
            for package in packages:
                result.extras.add(MODULE_EXTRAS.get(package, ""))
                result.packages.setdefault(package, _pinned(package))
    if top in MODULE_EXTRAS:
        result.extras.add(MODULE_EXTRAS[top])
        if top == "pandas":
            result.packages.setdefault("pandas", _pinned("pandas"))
        return
    if top in sys.stdlib_module_names or top in _IGNORED:
        return
    distribution = _distribution(top)
    if distribution is None:
        result.unknown.setdefault(top, set()).add(model)
    else:
        result.packages.setdefault(distribution, _pinned(distribution))


def needs(sources: list[ModelSource]) -> Needs:
    """The extras and packages every version of every model in ``sources`` needs."""
    result = Needs()
    for source in sources:
        for artifact in source.versions.values():
            runtime = served_runtime(artifact, source.card)
            if runtime in EXTRAS:
                result.extras.add(EXTRAS[runtime])
            for module in _modules(artifact):
                _add_module(result, module, source.name)
    result.extras.discard("")
    return result
