"""The background writer: predictions reach the database off the serving path.

The serving path appends one :data:`~modelport.outcomes.records.Pending` tuple per answered
request to :attr:`Writer.pending`, a ``collections.deque``: a length check and an ``append``
(atomic under the GIL), no lock, and no wake-up but the one below
(:meth:`.service.Outcomes.record`).
One thread wakes every ``max_delay_s`` (:data:`MAX_DELAY_S`, 50 ms), at once when :meth:`flush`
or :meth:`close` asks, or when a quarter of ``max_queue`` waits (the serving path sets the wake-up
once, as it appends that record: :attr:`Writer.early`); it takes everything queued, which is
turned into rows (:func:`~modelport.outcomes.records.to_rows`) and inserted in one transaction, a
few multi-row statements (:func:`.sink.commit`), so a busy server pays for one commit per batch,
not per prediction, and a record is committed within about 50 ms of its answer (plus the commit
itself). That work runs in the writer process (:mod:`.child`, started with the first batch when
``spawn`` is given: the server's default), where it does not take the GIL from the event loop
(this thread only pickles the batch and sends it, 2,500 records to a write, taking the GIL back
from the loop about three times a batch); without one, in this thread. Longer waits would save
a little (each batch has a fixed cost: statements, a commit, the GIL taken from the event loop;
one every 200 ms kept about 1 % more throughput at 16,000 predictions/s) but hold the event loop
up longer: in this thread the writer converts a batch a piece at a time (a quarter of it, 32 to
500 records) and the GIL is its own for each piece, so a request that arrives meanwhile waits
for a larger piece (which showed in the p99 of a single connection). After each batch the
thread deletes old records when a prune is due (:mod:`.retention`).

* **Queue full** (``max_queue`` records waiting: the database cannot keep up): the new record is
  dropped, counted in :attr:`Writer.dropped` and logged (the first, then every 1000th); the
  prediction itself is never delayed or failed.
* **Database error** (full disk, read-only or immutable file, lost connection, deleted file):
  the batch is dropped, counted in :attr:`Writer.failed` and in :class:`.health.Health` (which
  logs at most one line per error kind a minute, and feeds ``/ready`` and ``/metrics``); the
  next batch tries again, so recording resumes by itself once the database can be written.
  Serving goes on either way.
* **Writer process lost** (killed, crashed, or no answer within :data:`.child.ANSWER_S`): it is
  killed, this thread commits the batch itself (one the process had committed already is not
  stored or counted twice), logs it (rate-limited), and starts another process for later batches,
  at most every :data:`RESPAWN_S`; one that cannot start leaves the writing to this thread until
  then.
* **Durability window**: what a crash (SIGKILL, OOM, power loss) can lose is exactly the records
  not yet committed: those answered in the last ``max_delay_s`` plus a commit, or, when the
  database falls behind, at most ``max_queue`` records plus one batch. A committed record is
  never lost. :meth:`flush` waits until everything submitted before it is committed (feedback and
  reports call it); :meth:`close` (server shutdown, SIGTERM included) flushes, then stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from modelport.outcomes.child import WriterProcess
from modelport.outcomes.health import Health
from modelport.outcomes.records import Pending, piece
from modelport.outcomes.retention import Retention
from modelport.outcomes.sink import Written, commit
from modelport.outcomes.store import Store

__all__ = ["CLOSE_S", "MAX_DELAY_S", "RESPAWN_S", "Marker", "Writer"]

MAX_DELAY_S = 0.05  # how long a record may wait for the writer, at most
RESPAWN_S = 5.0  # a writer process is started at most this often
CLOSE_S = 30.0  # how long close() waits for the thread to commit what is queued

log = logging.getLogger("modelport.outcomes")


@dataclass(eq=False)
class Marker:
    """Set once every record queued before it is committed; ``stop`` ends the thread."""

    stop: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Writer:
    def __init__(
        self,
        store: Store,
        max_queue: int = 10_000,
        max_delay_s: float = MAX_DELAY_S,
        retention: Retention | None = None,
        health: Health | None = None,
        spawn: Callable[[], WriterProcess] | None = None,
    ) -> None:
        self.store = store
        if health is None:
            health = Health()
            health.opened(store.where)
        self.health = health
        self.max_queue = max_queue
        self.max_delay_s = max_delay_s
        self.early = max(1, max_queue // 4)  # records waiting that wake the writer at once
        self.retention = retention
        self.dropped = 0
        self.failed = 0
        self.written = 0
        self.batches = 0
        self.spawn = spawn  # starts a writer process; None: this thread commits every batch
        self.child: WriterProcess | None = None
        self.lost = 0  # writer processes that exited or stopped answering
        self._spawn_after = 0.0  # time.monotonic() before which none is started
        # what the serving path appends to; markers (flush, close) bypass the bound
        self.pending: deque[Pending | Marker] = deque()
        self._closed = False
        self._wake = threading.Event()  # a flush or close is waiting: write now
        self._thread = threading.Thread(target=self._run, name="modelport-outcomes", daemon=True)
        self._thread.start()

    def submit(self, record: Pending) -> None:
        """Queue one record for the database; never blocks (drops and counts when full)."""
        if self._closed:
            return
        waiting = len(self.pending)
        if waiting < self.max_queue:
            self.pending.append(record)
            if waiting + 1 == self.early:
                self.hurry()
        else:
            self.drop()

    def hurry(self) -> None:
        """Write what is queued now, without waiting for ``max_delay_s`` (:attr:`early` wait)."""
        self._wake.set()

    def drop(self) -> None:
        """Count a record the full queue could not take, and say so now and then."""
        self.dropped += 1
        self.health.drop("queue_full")
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning(
                "outcome queue full (%d records): %d predictions not recorded so far",
                self.max_queue,
                self.dropped,
            )

    def unconvertible(
        self,
        request_id: str | None,
        exc: Exception | None,
        count: int = 1,
        trace: str | None = None,
    ) -> None:
        """Count answers that could not be turned into records, and log the first (the log is
        rate-limited) with ``exc``'s traceback (``trace``: one formatted in the writer
        process)."""
        self.failed += count
        self.health.drop("unconvertible", count)
        self.health.log(
            "unconvertible", logging.ERROR, "could not record the answer of request %s",
            request_id, exc_info=exc, trace=trace,
        )  # fmt: skip

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record submitted so far is committed; ``False`` on timeout."""
        if self._closed:
            return True
        marker = Marker()
        self.pending.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = CLOSE_S) -> bool:
        """Commit what is queued, then stop the thread; later submissions are ignored. Whether
        the thread ended within ``timeout`` (else it still holds the store)."""
        if not self._closed:
            self._closed = True
            self.pending.append(Marker(stop=True))
            self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _take(self) -> tuple[list[Pending], list[Marker]]:
        """What is queued now (up to a stop marker), records and markers apart."""
        records: list[Pending] = []
        markers: list[Marker] = []
        pending = self.pending
        for _ in range(len(pending)):  # only this thread takes: popleft never finds it empty
            item = pending.popleft()
            if isinstance(item, Marker):
                markers.append(item)
                if item.stop:
                    break
            else:
                records.append(item)
        return records, markers

    def _run(self) -> None:
        self._prune()  # at open
        while True:
            self._wake.wait(self.max_delay_s)
            self._wake.clear()
            records, markers = self._take()
            self._write(records)
            for marker in markers:
                marker.done.set()
            if any(marker.stop for marker in markers):
                if self.child is not None:
                    self.child.close()
                return
            self._prune()

    def _write(self, records: list[Pending]) -> None:
        if not records:
            return
        self.batches += 1
        every = piece(len(records))
        offset = time.time() - time.perf_counter()
        written = self._in_child(records, offset, every)
        if written is None:
            written = commit(self.store, records, offset, every)
        if written.unconvertible:
            self.unconvertible(
                written.unconvertible_id, None, written.unconvertible,
                trace=written.unconvertible_trace,
            )  # fmt: skip
        if not written.requests:
            return
        if written.failure is not None:
            self.failed += written.requests
            self.health.failed(written.failure, written.requests)
        else:
            self.written += written.requests
            self.health.committed()

    def _in_child(self, records: list[Pending], offset: float, every: int) -> Written | None:
        """Have the writer process (started when none runs) commit a batch; ``None`` when no
        process runs, or when it was lost with the batch: then this thread commits it."""
        child = self._child()
        if child is None:
            return None
        try:
            return child.write(records, offset, every)
        except Exception as exc:  # lost (WriterLost), or a batch it could not be sent
            child.kill()  # (gone, silent, or out of step: never used again)
            self.child = None
            self.lost += 1
            self.health.log(
                "writer_lost", logging.WARNING,
                "the outcome writer process %d was lost (%s): its batch is written here",
                child.pid, exc,
            )  # fmt: skip
            return None

    def _child(self) -> WriterProcess | None:
        """The writer process; one is started when none runs, at most every ``RESPAWN_S``."""
        if self.child is not None or self.spawn is None:
            return self.child
        now = time.monotonic()
        if now < self._spawn_after:
            return None
        self._spawn_after = now + RESPAWN_S
        try:
            self.child = self.spawn()
        except Exception as exc:
            self.health.log(
                "writer_start", logging.WARNING,
                "%s: this process writes the outcome store for the next %.0f s", exc, RESPAWN_S,
            )  # fmt: skip
        return self.child

    def _prune(self) -> None:
        if self.retention is not None:
            self.retention.step()
