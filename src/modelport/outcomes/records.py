"""What the outcome store holds: answered prediction requests and their rows, and feedback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelport.core.result import InferenceResult

__all__ = ["Row", "Served", "StoredRequest"]


@dataclass(frozen=True, slots=True)
class Row:
    """One answered row: a class label (as text) for classifiers, a value for regressors."""

    index: int
    label: str | None
    value: float | None


@dataclass(frozen=True, slots=True)
class Served:
    """One answered prediction request, as the recorder hands it to the background writer.

    ``result`` is turned into :class:`Row` objects by the writer thread, off the event loop.
    ``latency_ms`` runs from the request reaching the app to the first byte of its answer.
    """

    request_id: str
    time: float
    model: str
    version: int | None
    variant: str
    kind: str | None
    latency_ms: float
    status: int
    error: str | None = None
    result: InferenceResult | None = None

    def rows(self) -> list[Row]:
        """The predicted rows (none for an error answer)."""
        if self.result is None or self.status >= 400:
            return []
        if self.result.signature.output.kind == "regression":
            values = self.result.labels()
            return [Row(i, None, float(v)) for i, v in enumerate(values)]
        return [Row(i, str(label), None) for i, label in enumerate(self.result.labels())]


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
