"""What the data plane reports about batches, for the metrics to record.

The data plane calls an :class:`Observer`; the default one ignores everything, so the data plane
never imports a metrics library (:class:`modelport.observability.metrics.Metrics` implements it).
Times are :func:`time.perf_counter` seconds; a prediction's own :class:`Timing` travels in its
result.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Observer", "Timing"]


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
    """Receives the data plane's batch events; every method does nothing unless overridden.

    The metrics implement it. Per-request timings travel in the result
    (:attr:`modelport.core.result.InferenceResult.timing`) instead, for the server's one
    observing step.
    """

    def batch(
        self, model: str, version: int, rows: int, depth: int, inference: float, waits: list[float]
    ) -> None:
        """A batch of ``rows`` rows ran for ``inference`` seconds, with one prediction for each
        of ``waits``: the seconds it waited from its request's arrival to the batch's start;
        ``depth`` items still wait."""

    def registry_poll(self, model: str, ok: bool) -> None:
        """One check of ``model``'s MLflow registry alias: answered (``ok``) or failed."""
