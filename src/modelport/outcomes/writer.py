"""The background writer: predictions reach the database off the serving path.

The recorder hands each answered request to :meth:`Writer.submit`, which never blocks: it puts
the record on a bounded queue. One thread waits for a record, gathers what follows for up to
``max_delay_s`` (50 ms; ``batch_size`` records at most) and inserts it all in one transaction, so
a busy server pays for one commit per batch, not per prediction, and a record is committed within
about 50 ms of its answer (plus the commit itself).

* **Queue full** (the database cannot keep up): the new record is dropped, counted in
  :attr:`Writer.dropped` and logged; the prediction itself is never delayed or failed.
* **Database error**: the batch is logged and counted in :attr:`Writer.failed`; serving goes on.
* **Durability window**: what a crash (SIGKILL, OOM, power loss) can lose is exactly the records
  not yet committed: those answered in the last ``max_delay_s`` plus a commit, or, when the
  database falls behind, at most ``max_queue`` records plus one batch. A committed record is
  never lost. :meth:`flush` waits until everything submitted before it is committed (feedback and
  reports call it); :meth:`close` (server shutdown, SIGTERM included) flushes, then stops.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field

from modelport.outcomes.records import Served
from modelport.outcomes.store import Store

__all__ = ["Writer"]

log = logging.getLogger("modelport.outcomes")


@dataclass(eq=False)
class _Marker:
    """Set once every record queued before it is committed; ``stop`` ends the thread."""

    stop: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Writer:
    def __init__(
        self,
        store: Store,
        max_queue: int = 10_000,
        batch_size: int = 500,
        max_delay_s: float = 0.05,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.dropped = 0
        self.failed = 0
        self.written = 0
        self._queue: queue.Queue[Served | _Marker] = queue.Queue(max_queue)
        self._closed = False
        self._urgent = threading.Event()  # a flush or close is waiting: commit now
        self._thread = threading.Thread(target=self._run, name="modelport-outcomes", daemon=True)
        self._thread.start()

    def submit(self, record: Served) -> None:
        """Queue one record for the database; never blocks (drops and counts when full)."""
        if self._closed:
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "outcome queue full (%d records): %d predictions not recorded so far",
                    self._queue.maxsize,
                    self.dropped,
                )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record submitted so far is committed; ``False`` on timeout."""
        if self._closed:
            return True
        marker = _Marker()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._urgent.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Marker(stop=True))
        self._urgent.set()
        self._thread.join(timeout)

    def _batch(self) -> list[Served | _Marker]:
        """Wait for a record, let more arrive for ``max_delay_s`` (cut short by a flush), then
        take what is queued, up to ``batch_size``."""
        batch = [self._queue.get()]
        if not isinstance(batch[0], _Marker):
            self._urgent.wait(self.max_delay_s)
        self._urgent.clear()
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._batch()
            records = [item for item in batch if isinstance(item, Served)]
            self._write(records)
            markers = [item for item in batch if isinstance(item, _Marker)]
            for marker in markers:
                marker.done.set()
            if any(marker.stop for marker in markers):
                return

    def _write(self, records: list[Served]) -> None:
        if not records:
            return
        try:
            self.store.write(records)
        except Exception:
            self.failed += len(records)
            log.exception("could not record %d predictions in %s", len(records), self.store.where)
        else:
            self.written += len(records)
