"""What the data plane reports about predictions, for metrics and traces to record.

The data plane calls an :class:`Observer`; the default one ignores everything, so the data plane
never imports a metrics or tracing library. :class:`modelport.observability.metrics.Metrics` and
:class:`modelport.observability.tracing.Tracing` implement it; :class:`Observers` fans out to
several.

Times are :func:`time.perf_counter` seconds. :meth:`Observer.prediction` runs in the caller's
context (its :func:`modelport.core.context.current` request), :meth:`Observer.batch` in the
batcher's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Observer", "Observers", "Timing"]


@dataclass(frozen=True, slots=True)
class Timing:
    """One prediction's way through a model: queued, taken into a batch, answered."""

    model: str
    version: int
    queued: float
    started: float
    finished: float

    @property
    def queue_wait(self) -> float:
        return self.started - self.queued

    @property
    def inference(self) -> float:
        return self.finished - self.started


class Observer:
    """Receives prediction events; every method does nothing unless overridden."""

    def queued(self, model: str, version: int, depth: int) -> None:
        """``depth`` items now wait in the model version's queue."""

    def batch(self, model: str, version: int, rows: int) -> None:
        """A batch of ``rows`` rows goes to the model."""

    def prediction(self, timing: Timing) -> None:
        """One caller's prediction was answered (only successful ones are reported)."""


class Observers(Observer):
    """Several observers as one."""

    def __init__(self, observers: Iterable[Observer]) -> None:
        self.observers = tuple(observers)

    def queued(self, model: str, version: int, depth: int) -> None:
        for observer in self.observers:
            observer.queued(model, version, depth)

    def batch(self, model: str, version: int, rows: int) -> None:
        for observer in self.observers:
            observer.batch(model, version, rows)

    def prediction(self, timing: Timing) -> None:
        for observer in self.observers:
            observer.prediction(timing)
