"""The data plane: the one protocol-neutral API every protocol adapter calls.

Adapters parse their wire format, call :meth:`DataPlane.records_to_rows` (or build rows themselves),
:meth:`DataPlane.infer`, and format the :class:`InferenceResult` back into their wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio.to_thread
import numpy as np
from pydantic import BaseModel, ValidationError

from modelport.batching import Batcher, BatchPolicy
from modelport.core import context
from modelport.core.checks import check_rows
from modelport.core.deadlines import Deadlines
from modelport.core.observe import Observer, Timing
from modelport.core.registry import LoadedModel, Registry
from modelport.core.result import InferenceResult
from modelport.core.validation import invalid_input
from modelport.errors import GatewayTimeout, InvalidInput, ModelportError
from modelport.runtimes import Outputs

_DEADLINES = hasattr(asyncio.Task, "uncancel")  # Python 3.11+: one timer for every deadline

__all__ = ["DataPlane", "DirectRouter", "InferenceResult", "Router"]


class Router(Protocol):
    """Picks the version that serves a prediction (a traffic policy lives above the core)."""

    def route(self, name: str | None, version: int | None = None) -> LoadedModel: ...

    def after(self, rows: np.ndarray, result: InferenceResult) -> None:
        """Called once the answer is known (a shadow copy may follow)."""


class DirectRouter:
    """No traffic policy: the version asked for, else the model's default version."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def route(self, name: str | None, version: int | None = None) -> LoadedModel:
        return self.registry.get(name, version)

    def after(self, rows: np.ndarray, result: InferenceResult) -> None:
        return None


class DataPlane:
    """Health, metadata and inference over a :class:`Registry`."""

    def __init__(
        self,
        registry: Registry,
        request_timeout: float | None = None,
        observer: Observer | None = None,
        router: Router | None = None,
    ) -> None:
        self.registry = registry
        self.request_timeout = request_timeout
        self.deadlines = (  # every prediction's deadline on one timer; None: wait_for (3.10)
            Deadlines(request_timeout) if request_timeout is not None and _DEADLINES else None
        )
        self.router: Router = router or DirectRouter(registry)
        self.observer = observer or Observer()
        self.standing: set[object] = set()  # a token per batching queue that stands (overload)

    def ready(self) -> bool:
        return self.registry.ready

    def admit(self, name: str | None, version: int | None = None) -> None:
        """Refuse (503) a prediction before its body is read when the model it asks for is
        overloaded: every loaded version it may be routed to refuses new requests. Only called
        while :attr:`standing` is not empty, so it costs nothing otherwise."""
        key = self.registry.default_model if name is None else name
        model = self.registry.models.get(key) if key is not None else None
        if model is None:
            return  # the handler answers 404
        versions = [mv.loaded for n, mv in model.versions.items() if version in (None, n)]
        batchers = [v.batcher for v in versions if v is not None]
        refusing = [b for b in batchers if b is not None and b.refusing]
        if refusing and len(refusing) == len(batchers):
            raise refusing[0].overloaded(
                f"model {model.name!r} is serving all it can: try again shortly"
            )

    def version(self, name: str | None, version: int | None = None) -> LoadedModel:
        """The ready model version (404 unknown, 503 not loaded)."""
        return self.registry.get(name, version)

    def route(self, name: str | None, version: int | None = None) -> LoadedModel:
        """The version serving a prediction: ``version`` when given, else the one the model's
        traffic policy picks for this request (else its default version)."""
        return self.router.route(name, version)

    @staticmethod
    def parse_record(model: LoadedModel, body: bytes) -> BaseModel:
        """Validate one JSON object against the model's request model."""
        try:
            return model.request.model_validate_json(body)
        except ValidationError as exc:
            raise invalid_input(exc, example=model.signature.example) from exc

    def record_rows(self, model: LoadedModel, records: Sequence[BaseModel]) -> np.ndarray:
        """Validated request records as a batch."""
        return model.rows(records)

    def records_to_rows(
        self,
        model: LoadedModel,
        records: Sequence[Any],
        prefix: Sequence[str | int] = ("body",),
        start: int = 0,
    ) -> np.ndarray:
        """Validate decoded records (mappings of field name to value) into a batch.

        Errors name the record as ``prefix + [start + index]``.
        """
        parsed = []
        for index, record in enumerate(records):
            try:
                parsed.append(model.request.model_validate(record))
            except ValidationError as exc:
                raise invalid_input(exc, [*prefix, start + index], model.signature.example) from exc
        return model.rows(parsed)

    def check_rows(self, model: LoadedModel, rows: np.ndarray) -> np.ndarray:
        """Check a decoded ``(batch, n_inputs)`` array against the model's signature."""
        return check_rows(model.signature, rows)

    @staticmethod
    def infer_sync(model: LoadedModel, rows: np.ndarray) -> InferenceResult:
        """Run the model on a batch in this thread (no batching, no deadline)."""
        with _errors(model):
            model.runtime.check(rows)
            outputs = _checked(model, rows, model.runtime.predict(rows))
        return InferenceResult(model.name, model.version, model.signature, outputs)

    async def infer(self, model: LoadedModel, rows: np.ndarray) -> InferenceResult:
        """Predict a batch: micro-batched with concurrent requests where the model allows it,
        off the event loop when its runtime blocks, within the request deadline (504).

        The request's :class:`~modelport.core.context.RequestInfo` records the version that
        served and the result; the result carries the prediction's timing (arrival, batch start,
        batch end), so no clock is read here per request.
        """
        info = context.current()
        if info is not None:
            info.model, info.version = model.name, model.version
        job = _Job(rows, info.started if info is not None else time.perf_counter())
        try:
            with _errors(model):
                model.runtime.check(rows)
                outputs = await self._within_deadline(self._predict(model, job))
        except asyncio.TimeoutError as exc:
            raise GatewayTimeout(
                f"model {model.name!r} did not answer within {self.request_timeout:g} s"
            ) from exc
        timing = Timing(model.name, model.version, job.queued, job.started, job.finished)
        result = InferenceResult(model.name, model.version, model.signature, outputs, timing)
        if info is not None:
            info.result = result
        self.router.after(rows, result)  # a shadow copy, when the policy asks for one
        return result

    # The two helpers below hand back what is to be awaited rather than awaiting it themselves:
    # every coroutine between a request's task and the batcher's future is entered on the way
    # in and resumed on the way out, about half a microsecond each.

    def _within_deadline(self, work: Coroutine[Any, Any, Outputs]) -> Awaitable[Outputs]:
        if self.deadlines is not None:
            return self.deadlines.run(work)
        if self.request_timeout is None:
            return work
        return asyncio.wait_for(work, self.request_timeout)  # Python 3.10

    def _predict(self, model: LoadedModel, job: _Job) -> Coroutine[Any, Any, Outputs]:
        batcher = self._batcher(model)
        if batcher is None:
            return self._alone(model, job)
        key = (job.rows.dtype.kind, job.rows.shape[1:])
        return batcher.submit(job, size=len(job.rows), key=key, arrived=job.queued)

    async def _alone(self, model: LoadedModel, job: _Job) -> Outputs:
        return (await self._process(model, [job]))[0]

    async def _process(self, model: LoadedModel, jobs: list[_Job]) -> list[Outputs]:
        """Run one batch of jobs; two clock reads per batch, shared by its jobs."""
        started = time.perf_counter()
        batches = [job.rows for job in jobs]
        rows = batches[0] if len(batches) == 1 else np.concatenate(batches)
        outputs = _split(await _run(model, rows), [len(b) for b in batches])
        finished = time.perf_counter()
        depth = model.batcher.depth if model.batcher is not None else 0
        waits = []
        for job in jobs:
            job.started, job.finished = started, finished
            waits.append(started - job.queued)
        self.observer.batch(model.name, model.version, len(rows), depth, finished - started, waits)
        return outputs

    def _batcher(self, model: LoadedModel) -> Batcher[_Job, Outputs] | None:
        policy = model.card.batching
        if not (policy.enabled and model.runtime.batchable):
            return None
        if model.batcher is None:

            async def process(jobs: list[_Job]) -> list[Outputs]:
                return await self._process(model, jobs)

            token = object()  # this queue's own: a reloaded version's new queue has another

            def standing(now: bool) -> None:
                (self.standing.add if now else self.standing.discard)(token)

            model.batcher = Batcher(
                process,
                BatchPolicy(
                    policy.max_batch_size,
                    policy.max_latency_ms / 1000,
                    policy.max_queue,
                    math.inf if policy.max_wait_ms is None else policy.max_wait_ms / 1000,
                    policy.max_retry_after_s,
                ),
                on_standing=standing,
            )
        return model.batcher

    async def close(self) -> None:
        """Stop every batcher; requests still queued get an error answer."""
        for entry in list(self.registry.models.values()):
            for version in entry.versions.values():
                if version.loaded is not None and version.loaded.batcher is not None:
                    await version.loaded.batcher.close()
        if self.deadlines is not None:
            self.deadlines.close()


@dataclass(slots=True)
class _Job:
    """Rows waiting in a batcher, with when they arrived and when their batch started."""

    rows: np.ndarray = field(repr=False)
    queued: float
    started: float = 0.0
    finished: float = 0.0


INLINE_S = 0.0002
"""A batch of numbers that the model has lately run in less than this (an average of its recent
batches) runs on the event loop: handing it to a worker thread and back costs more (two wake-ups
and two handovers of the GIL), and the loop waits no longer than that anyway."""
_COST_WEIGHT = 0.2  # of the newest batch in the running average


async def _run(model: LoadedModel, rows: np.ndarray) -> Outputs:
    runtime = model.runtime
    cost = model.batch_seconds
    if runtime.blocking and (cost is None or cost > INLINE_S or rows.dtype.kind != "f"):
        outputs, seconds = await anyio.to_thread.run_sync(_timed, runtime.predict, rows)
    else:
        outputs, seconds = _timed(runtime.predict, rows)
    model.batch_seconds = seconds if cost is None else cost + (seconds - cost) * _COST_WEIGHT
    return _checked(model, rows, outputs)


def _timed(predict: Callable[[np.ndarray], Outputs], rows: np.ndarray) -> tuple[Outputs, float]:
    """``predict(rows)`` and the seconds it took (in whichever thread runs it)."""
    started = time.perf_counter()
    outputs = predict(rows)
    return outputs, time.perf_counter() - started


def _checked(model: LoadedModel, rows: np.ndarray, outputs: Outputs) -> Outputs:
    if len(outputs.predictions) != len(rows):
        raise ModelportError(
            f"model {model.name!r} answered {len(outputs.predictions)} rows for {len(rows)}"
        )
    return outputs


def _split(outputs: Outputs, sizes: list[int]) -> list[Outputs]:
    if len(sizes) == 1:
        return [outputs]
    bounds = np.cumsum([0, *sizes])
    proba = outputs.probabilities
    return [
        Outputs(outputs.predictions[a:b], None if proba is None else proba[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


@contextlib.contextmanager
def _errors(model: LoadedModel) -> Iterator[None]:
    """Runtime failures as modelport errors: bad values 422, anything else 500 with the cause."""
    try:
        yield
    except ModelportError:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"model {model.name!r} rejected the input: {exc}") from exc
    except asyncio.TimeoutError:
        raise
    except Exception as exc:
        raise ModelportError(f"model {model.name!r} failed: {type(exc).__name__}: {exc}") from exc
