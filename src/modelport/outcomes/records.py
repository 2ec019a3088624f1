"""What the outcome store holds, and how the writer turns what the server hands it into rows.

The serving path hands over one :data:`Pending` tuple per answered prediction request (appending
a tuple is all it pays); the writer thread turns a batch of them into :data:`RequestRow` and
:data:`PredictionRow` tuples with :func:`to_rows`, off the event loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    from modelport.core.result import InferenceResult

__all__ = [
    "Converted",
    "Pending",
    "PredictionRow",
    "RequestRow",
    "StoredRequest",
    "let_loop_run",
    "offer_cpu",
    "phrase",
    "piece",
    "scoped_id",
    "shown",
    "to_rows",
    "yielding",
]

T = TypeVar("T")


Pending: TypeAlias = "tuple[str, float, str, int, str, float, int, str | None, list[Any] | None]"
"""One answered request as the server hands it over: ``(request_id, started, model, version,
variant, latency_ms, status, kind, shown)``; ``started`` is ``time.perf_counter()`` seconds,
``kind`` and ``shown`` are :func:`shown`'s."""

RequestRow: TypeAlias = tuple[
    str, float, str, int | None, str, str | None, int, float, int, str | None
]
"""A ``mp_requests`` row: ``(request_id, ts, model, version, variant, kind, n_rows,
latency_ms, status, error)``, ``ts`` in Unix seconds."""

PredictionRow: TypeAlias = tuple[str, int, str | None, float | None]
"""A ``mp_predictions`` row: ``(request_id, row_index, label, value)``: a class label (as text)
for classifiers, a value for regressors."""

_PHRASES: dict[int, str] = {}


def scoped_id(scope: str, request_id: str) -> str:
    """The id a request is stored under: its own for the anonymous scope ``""``, else
    ``"<scope> <request id>"``. Request ids never hold a space (the server only takes printable
    ASCII without spaces), so two scopes never share a stored id, and the anonymous scope's ids
    are unchanged."""
    return f"{scope} {request_id}" if scope else request_id


@dataclass(slots=True)
class Converted:
    """A batch as rows of each table; ``failed`` counts requests that could not be converted
    (``error`` is the first one's exception, ``failed_id`` its request id)."""

    requests: list[RequestRow] = field(default_factory=list)
    predictions: list[PredictionRow] = field(default_factory=list)
    failed: int = 0
    error: Exception | None = None
    failed_id: str | None = None


def phrase(status: int) -> str:
    """The reason phrase of an error status (``Unprocessable Entity``), or ``HTTP <status>``."""
    found = _PHRASES.get(status)
    if found is None:
        try:
            found = HTTPStatus(status).phrase
        except ValueError:
            found = f"HTTP {status}"
        _PHRASES[status] = found
    return found


def shown(result: InferenceResult | None, status: int) -> tuple[str | None, list[Any] | None]:
    """What a record keeps of an answer: the answering model's output kind (``None`` without a
    result) and, for a success, each row's prediction as the answer showed it (class labels or
    values; the answer worked them out already). ``None`` for an error answer, and for a model
    answering vectors (embeddings): a vector is no label or value that feedback could be
    compared with. Read on the serving path, so that no model output is kept alive until the
    writer runs."""
    if result is None:
        return None, None
    kind = result.signature.output.kind
    if status >= 400 or (kind == "regression" and result.outputs.predictions.ndim != 1):
        return kind, None
    return kind, result.labels()


def _predicted(request_id: str, kind: str | None, values: list[Any]) -> list[PredictionRow]:
    """The predicted rows of one answer."""
    if kind != "regression":
        return [(request_id, i, str(label), None) for i, label in enumerate(values)]
    return [(request_id, i, None, float(v)) for i, v in enumerate(values)]


MIN_PIECE, MAX_PIECE = 32, 500


def piece(records: int) -> int:
    """How many of a batch's records the writer works through between two releases of the GIL
    (:func:`let_loop_run`; in the writer process, offers of its CPU: :func:`offer_cpu`), converted,
    summed up, or sent in one statement: a quarter of the batch, from 32 to 500.
    While the writer holds the GIL the event loop waits, so a light load, with small batches,
    gets short holds (the loop answers within a fraction of a millisecond); and every handover
    of the GIL costs the loop too, so a heavy load, with large batches, gets few of them."""
    return max(MIN_PIECE, min(MAX_PIECE, records // 4))


def let_loop_run() -> None:
    """Between two pieces in the server's writer thread: release the GIL for the event loop's
    thread. ``time.sleep(0)`` sleeps for the timer's slack (about 50 µs), long enough for the
    waiting thread to take it (``sched_yield`` returns before it can)."""
    time.sleep(0)


def offer_cpu() -> int:
    """Between two pieces in the writer process, and every few SQLite steps there
    (:meth:`.store.Store.offer_cpu_every`): let a task waiting for this CPU run (the server, the
    load beside it), then go on at once. A sleep would end in a wake-up, which takes a CPU from
    whatever runs there. Returns 0, which tells SQLite to go on."""
    os.sched_yield()
    return 0


def yielding(
    items: Sequence[T], every: int, pause: Callable[[], object] = let_loop_run
) -> Iterator[T]:
    """``items``, with a ``pause`` every ``every``."""
    for index, item in enumerate(items):
        if index and not index % every:
            pause()
        yield item


def to_rows(
    batch: Sequence[Pending],
    offset: float,
    every: int = MAX_PIECE,
    pause: Callable[[], object] = let_loop_run,
) -> Converted:
    """The rows of a batch; ``offset`` is ``time.time() - time.perf_counter()`` (taken once
    per batch), which turns each request's ``started`` into Unix seconds; ``pause`` every
    ``every`` records (:func:`piece`): :func:`let_loop_run` or :func:`offer_cpu`.

    Error answers (status 400 and up) get their reason phrase and no predicted rows. A request
    whose answer cannot be turned into rows is counted in :attr:`Converted.failed` (the writer
    logs it); the others go on.
    """
    converted = Converted()
    for record in yielding(batch, every, pause):
        request_id, started, model, version, variant, latency_ms, status, kind, values = record
        error, rows = None, []
        try:
            if values is not None and status < 400:
                rows = _predicted(request_id, kind, values)
            if status >= 400:
                error = phrase(status)
        except Exception as exc:
            converted.failed += 1
            if converted.error is None:
                converted.error, converted.failed_id = exc, request_id
            continue
        converted.requests.append(
            (request_id, started + offset, model, version, variant, kind, len(rows), latency_ms,
             status, error)
        )  # fmt: skip
        converted.predictions.extend(rows)
    return converted


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A recorded request as feedback sees it."""

    request_id: str
    model: str
    version: int | None
    variant: str
    kind: str | None
    rows: int
    status: int
