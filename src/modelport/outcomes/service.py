"""The outcome service of one server process: the store, its background writer, the settings.

Opened in the app's lifespan (in each worker process, after a fork) and closed at shutdown, which
commits every queued record. A store that cannot be opened disables recording with a warning;
serving never depends on it. :meth:`Outcomes.record` is the serving path's whole cost: it appends
one tuple to the writer's queue. :attr:`Outcomes.health` says how recording is doing
(:mod:`.health`), for ``/ready`` and ``/metrics``.

Blocking store work of requests (feedback, reports) runs in the service's own threads, at most
:data:`STORE_THREADS` at once (:meth:`Outcomes.call`), never in the thread pool that blocking
runtimes predict in; at most :data:`MAX_FEEDBACK` feedback requests are worked on at once per
process, more answer 503 with ``Retry-After`` (:meth:`Outcomes.feedback_slot`).

Reports (:meth:`Outcomes.report`) run one at a time per process, in a worker thread. A call
that arrives while one runs waits for the next computation, which then answers every call that
waited for it: concurrent calls share one, and none sees data older than its own arrival. A call
that waits longer than :data:`REPORT_WAIT_S` answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

from modelport.errors import ConfigError, OutcomesUnavailable, Overloaded
from modelport.outcomes.backends import open_store
from modelport.outcomes.child import WriterProcess
from modelport.outcomes.experiments import add_event, change_warning, resolve
from modelport.outcomes.health import Health, OutcomeObserver
from modelport.outcomes.records import Pending, shown
from modelport.outcomes.report import ExperimentReport, experiment_report
from modelport.outcomes.retention import Retention
from modelport.outcomes.store import Store
from modelport.outcomes.writer import CLOSE_S, MAX_DELAY_S, Marker, Writer
from modelport.settings import Settings
from modelport.sources import is_registry_uri

if TYPE_CHECKING:
    from modelport.core.result import InferenceResult

__all__ = [
    "DB_FILE",
    "MAX_FEEDBACK",
    "REPORT_WAIT_S",
    "STORE_THREADS",
    "Outcomes",
    "default_db",
    "note_offline",
    "stored",
    "stored_report",
]

log = logging.getLogger("modelport.outcomes")
DB_FILE = Path(".modelport") / "outcomes.db"
STORE_THREADS = 4  # threads doing a process's request-side store work at once
MAX_FEEDBACK = 64  # feedback requests a process works on at once; more answer 503
REPORT_WAIT_S = 10.0  # how long a report call waits for the one computing before a 503
T = TypeVar("T")


def default_db(models: Path) -> Path:
    """``<repository>/.modelport/outcomes.db`` (beside a single model file; in the registry
    cache for an MLflow registry model)."""
    if is_registry_uri(models):
        return Settings().registry_cache.expanduser() / DB_FILE
    base = models.parent if models.is_file() else models
    return base / DB_FILE


def stored(settings: Settings) -> Store:
    """The outcome store ``settings`` name, which must exist already (for the CLI)."""
    path = settings.outcomes_db or default_db(settings.models)
    if not settings.outcomes_url and not path.is_file():
        raise ConfigError(f"no outcome store at {path}: pass --db or --url")
    return open_store(settings.outcomes_url, path)


def note_offline(settings: Settings, model: str, change: str, **details: object) -> str | None:
    """Note a traffic change made without a server (``modelport rollout``, ``rollback``) in the
    running experiment of ``model``, as the admin API does; the warning to show, or ``None``
    when recording is off, no store exists yet (so no experiment runs) or none runs."""
    if not settings.outcomes:
        return None
    path = settings.outcomes_db or default_db(settings.models)
    if not settings.outcomes_url and not path.is_file():
        return None
    store = open_store(settings.outcomes_url, path)
    try:
        noted = add_event(store, model, change, **details)
    finally:
        store.close()
    return None if noted is None else change_warning(noted.name, model, change)


def stored_report(
    settings: Settings, model: str, min_samples: int, experiment: str | None = None
) -> ExperimentReport:
    """The experiment report of ``model`` from the outcome store ``settings`` name: of the
    experiment named ``experiment``, else of the running one, else of everything recorded."""
    store = stored(settings)
    try:
        found = resolve(store, model, experiment)
        return experiment_report(store, model, min_samples, found, settings.outcomes_tau)
    finally:
        store.close()


class Outcomes:
    def __init__(
        self,
        settings: Settings,
        max_delay_s: float = MAX_DELAY_S,
        observer: OutcomeObserver | None = None,
    ) -> None:
        self.settings = settings
        self.max_delay_s = max_delay_s  # how long a record may wait for the writer
        self.store: Store | None = None
        self.writer: Writer | None = None
        self.health = Health(observer)
        self.reports_computed = 0
        self.report_wait_s = REPORT_WAIT_S
        self._pending: deque[Pending | Marker] | None = None  # the writer's queue, while recording
        self._limit = settings.outcomes_queue
        self._threads: anyio.CapacityLimiter | None = None  # made on the event loop, when needed
        self._feedback = 0  # feedback requests in progress (touched on the event loop only)
        self._report_lock: anyio.Lock | None = None  # made in the event loop, on first use
        self._reports: dict[tuple[str, int, str | None], tuple[float, ExperimentReport]] = {}

    @property
    def recording(self) -> bool:
        return self.writer is not None

    @property
    def feedback_in_progress(self) -> int:
        return self._feedback

    def open(self) -> None:
        """Open the store and start the writer; on failure log why and serve without them."""
        if not self.settings.outcomes or self.store is not None:
            return
        path = self.settings.outcomes_db or default_db(self.settings.models)
        try:
            self.store = open_store(self.settings.outcomes_url, path)
        except Exception as exc:
            self.health.unavailable(None, exc)
            log.warning("predictions will not be recorded: %s: %s", type(exc).__name__, exc)
            return
        self.health.opened(self.store.where)
        retention = Retention(
            self.store, self.settings.outcomes_max_age_days, self.settings.outcomes_max_rows
        )
        spawn = None
        if self.settings.outcomes_process:
            spawn = functools.partial(WriterProcess, self.settings.outcomes_url, path)
        self.writer = Writer(
            self.store, self._limit, self.max_delay_s, retention, self.health, spawn
        )
        self._pending = self.writer.pending
        log.info("recording predictions and feedback in %s", self.store.where)

    def require(self) -> Store:
        """The store, or 503 when predictions are not being recorded."""
        if self.store is None:
            raise OutcomesUnavailable(
                "predictions are not being recorded: outcomes are off or the store failed to open"
            )
        return self.store

    def record(
        self,
        request_id: str,
        started: float,
        model: str,
        version: int,
        variant: str,
        latency_ms: float,
        status: int,
        result: InferenceResult | None,
    ) -> None:
        """Record one answered prediction request; never blocks, never fails.

        ``started`` is the request's arrival (``time.perf_counter()`` seconds), ``latency_ms``
        runs to the first byte of its answer, ``result`` is ``None`` for an error answer. All this
        does is read what the answer showed (:func:`~.records.shown`) and append a tuple to the
        writer's queue (or count a drop when it is full), waking the writer when that tuple makes
        a quarter of the queue's bound (:attr:`.writer.Writer.early`).
        """
        pending, writer = self._pending, self.writer
        if pending is None or writer is None:
            return
        waiting = len(pending)
        if waiting >= self._limit:
            writer.drop()
            return
        try:
            kind, values = shown(result, status)
        except Exception as exc:  # the answer is sent: a record that cannot be made is counted
            writer.unconvertible(request_id, exc)
            return
        pending.append(
            (request_id, started, model, version, variant, latency_ms, status, kind, values)
        )
        if waiting + 1 == writer.early:
            writer.hurry()

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    async def call(self, work: Callable[[], T]) -> T:
        """Run blocking store work in one of the service's own threads (at most
        :data:`STORE_THREADS` at once; other callers wait without a thread)."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(STORE_THREADS)
        return await anyio.to_thread.run_sync(work, limiter=self._threads)

    @contextlib.contextmanager
    def feedback_slot(self) -> Iterator[None]:
        """Hold one of :data:`MAX_FEEDBACK` places for a feedback request (on the event loop);
        503 with ``Retry-After`` when they are all taken."""
        if self._feedback >= MAX_FEEDBACK:
            raise Overloaded(
                f"{MAX_FEEDBACK} feedback requests are being worked on already: retry shortly"
            )
        self._feedback += 1
        try:
            yield
        finally:
            self._feedback -= 1

    async def report(
        self, model: str, min_samples: int, experiment: str | None = None
    ) -> ExperimentReport:
        """The experiment report of ``model`` (of the named ``experiment``, else of the running
        one, else of everything), computed once for every call waiting for it."""
        store = self.require()
        arrived, key = time.monotonic(), (model, min_samples, experiment)
        if self._report_lock is None:
            self._report_lock = anyio.Lock()
        lock = self._report_lock
        acquired = False
        with anyio.move_on_after(self.report_wait_s):
            await lock.acquire()
            acquired = True
        if not acquired:
            raise Overloaded("another experiment report is being computed: try again shortly")
        try:
            done = self._reports.get(key)
            if done is not None and done[0] >= arrived:
                return done[1]  # computed for a call that came after this one
            started = time.monotonic()
            report = await self.call(lambda: self._report(store, model, min_samples, experiment))
            if len(self._reports) >= 64:
                self._reports.clear()
            self._reports[key] = (started, report)
            return report
        finally:
            lock.release()

    def _report(
        self, store: Store, model: str, min_samples: int, experiment: str | None
    ) -> ExperimentReport:
        self.flush()
        self.reports_computed += 1
        found = resolve(store, model, experiment)
        return experiment_report(store, model, min_samples, found, self.settings.outcomes_tau)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Outcomes]:
        """Open for the block (in a worker thread), then commit what is queued and close."""
        await anyio.to_thread.run_sync(self.open)
        try:
            yield self
        finally:
            await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        self._pending = None
        self._reports.clear()
        self._report_lock = None
        ended = True
        if self.writer is not None:
            ended = self.writer.close()
            if not ended:
                log.warning(
                    "the outcome writer has not finished in %.0f s: the records it holds are "
                    "lost if the process exits now", CLOSE_S,
                )  # fmt: skip
            self.writer = None
        if self.store is not None:
            if ended:  # (else the writer thread still writes with it)
                self.store.close()
            self.store = None
