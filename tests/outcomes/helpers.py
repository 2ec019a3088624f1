"""Records as the serving path hands them over, written the way the writer writes them."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.result import InferenceResult
from modelport.model.signature import FieldSpec, OutputSpec, Signature
from modelport.outcomes.records import Pending, shown, to_rows
from modelport.outcomes.store import Store
from modelport.runtimes import Outputs

__all__ = [
    "CLASSIFIER", "REGRESSOR", "classified", "fill", "immutable", "outcomes", "pending", "query",
    "small_tmpfs", "traffic", "write",
]  # fmt: skip

CLASSIFIER = Signature(
    inputs=[FieldSpec(name="x")],
    output=OutputSpec(kind="classification"),
    classes=["no", "yes"],
)
REGRESSOR = Signature(inputs=[FieldSpec(name="x")], output=OutputSpec(kind="regression"))


def classified(labels: list[str], model: str = "m", version: int = 1) -> InferenceResult:
    return InferenceResult(model, version, CLASSIFIER, Outputs(np.asarray(labels, dtype=object)))


def pending(
    request_id: str,
    labels: list[str] | None = None,
    status: int = 200,
    *,
    started: float | None = None,
    model: str = "m",
    version: int = 1,
    variant: str = "v1",
    latency_ms: float = 1.5,
    result: InferenceResult | None = None,
) -> Pending:
    """One answered request as :meth:`.Outcomes.record` queues it; a classifier's ``labels``
    unless ``result`` is given."""
    if result is None and labels is not None:
        result = classified(labels, model, version)
    at = time.perf_counter() if started is None else started
    return (request_id, at, model, version, variant, latency_ms, status, *shown(result, status))


def write(store: Store, records: list[Pending], offset: float | None = None) -> None:
    """Write ``records`` as the writer does; ``offset=0`` makes each ``started`` its ``ts``."""
    if offset is None:
        offset = time.time() - time.perf_counter()
    converted = to_rows(records, offset)
    assert converted.failed == 0
    store.write(converted.requests, converted.predictions)


def query(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a ``SELECT`` on the store's own connection."""
    with store._transaction() as cursor:
        cursor.execute(store._sql(sql), params)
        return [tuple(row) for row in cursor.fetchall()]


def traffic(store: Store, model: str) -> list[tuple[Any, ...]]:
    """``(variant, version, status, latency_ms, kind)`` of every request of ``model``."""
    sql = "SELECT variant, version, status, latency_ms, kind FROM mp_requests WHERE model = ?"
    return query(store, sql, model)


def outcomes(store: Store, model: str) -> list[tuple[Any, ...]]:
    """``(variant, predicted label, predicted value, true label, true value)`` per feedback."""
    sql = (
        "SELECT r.variant, p.label, p.value, f.label, f.value FROM mp_feedback f"
        " JOIN mp_predictions p ON p.request_id = f.request_id AND p.row_index = f.row_index"
        " JOIN mp_requests r ON r.request_id = f.request_id WHERE r.model = ?"
    )
    return query(store, sql, model)


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[list[Path]]:
    """Every file in ``folder`` made immutable (``chattr +i``: even descriptors already open
    cannot write), and writable again afterwards."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    subprocess.run(["chattr", "+i", *map(str, files)], check=True)
    try:
        yield files
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=True)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (root), unmounted afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(path: Path) -> int:
    """Write ``path`` until its file system is full; the bytes written."""
    written = 0
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                written += out.write(b"\0" * 65536)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return written
