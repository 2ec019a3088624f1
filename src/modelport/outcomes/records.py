"""What the outcome store holds, and how the writer turns what the server hands it into rows.

The serving path hands over one :data:`Pending` tuple per answered prediction request (appending
a tuple is all it pays); the writer thread turns a batch of them into :data:`RequestRow` and
:data:`PredictionRow` tuples with :func:`to_rows`, off the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelport.core.result import InferenceResult

__all__ = [
    "Converted",
    "Pending",
    "PredictionRow",
    "RequestRow",
    "StoredRequest",
    "phrase",
    "scoped_id",
    "to_rows",
]


Pending: TypeAlias = "tuple[str, float, str, int, str, float, int, InferenceResult | None]"
"""One answered request as the server hands it over: ``(request_id, started, model, version,
variant, latency_ms, status, result)``; ``started`` is ``time.perf_counter()`` seconds,
``result`` is ``None`` for an error answer."""

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


def _predicted(request_id: str, result: InferenceResult) -> list[PredictionRow]:
    """The predicted rows of one answer. A model answering vectors (embeddings) has none: a
    vector is no label or value that feedback could be compared with."""
    if result.signature.output.kind != "regression":
        return [(request_id, i, str(label), None) for i, label in enumerate(result.labels())]
    if result.outputs.predictions.ndim != 1:
        return []
    values: list[Any] = result.labels()
    return [(request_id, i, None, float(v)) for i, v in enumerate(values)]


# records converted between two releases of the GIL (about 0.5 ms of work): the event loop waits
# at most that long for it, and each handover costs the loop too (so not after every few records)
_YIELD_EVERY = 256


def to_rows(batch: Iterable[Pending], offset: float) -> Converted:
    """The rows of a batch; ``offset`` is ``time.time() - time.perf_counter()`` (taken once
    per batch), which turns each request's ``started`` into Unix seconds.

    Error answers (status 400 and up) get their reason phrase and no predicted rows; the kind
    is the answering model's (``None`` without a result). A request whose answer cannot be
    turned into rows is counted in :attr:`Converted.failed` (the writer logs it); the others go
    on.
    """
    converted = Converted()
    for index, record in enumerate(batch):
        if index % _YIELD_EVERY == _YIELD_EVERY - 1:
            time.sleep(0)  # let the event loop thread have the GIL: no long stall of requests
        request_id, started, model, version, variant, latency_ms, status, result = record
        kind, error, rows = None, None, []
        try:
            if result is not None:
                kind = result.signature.output.kind
                if status < 400:
                    rows = _predicted(request_id, result)
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
