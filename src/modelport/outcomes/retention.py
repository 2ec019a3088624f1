"""Retention: the outcome store stays bounded on disk, whatever the traffic.

Two bounds, each 0 to turn it off: an age (``MODELPORT_OUTCOMES_MAX_AGE_DAYS``, 30 days) and a
number of requests (``MODELPORT_OUTCOMES_MAX_ROWS``, 1,000,000). The writer thread calls
:meth:`Retention.step` after each batch; a prune is due when the writer starts and then every
``every_s`` (60 s). A due prune finds what to delete once, then deletes it ``chunk`` requests at
a time, one chunk per writer wake-up, so a large backlog (the first start on an old database)
never holds up the writer for long. Nothing here runs on the serving path.

Between two prunes the store may hold up to a minute of traffic more than ``max_rows``. A prune
that fails (a lost connection, two replicas deleting the same rows) is logged and tried again
when the next one is due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from modelport.outcomes.store import Store

__all__ = ["DAY_S", "Retention"]

log = logging.getLogger("modelport.outcomes")
DAY_S = 86_400.0


class Retention:
    def __init__(
        self,
        store: Store,
        max_age_days: float = 0,
        max_rows: int = 0,
        every_s: float = 60.0,
        chunk: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.max_age_s = max_age_days * DAY_S
        self.max_rows = max_rows
        self.every_s = every_s
        self.chunk = chunk
        self.pruned = 0  # requests deleted so far
        self._clock = clock
        self._due = clock()  # the first step prunes
        self._bound: float | None = None  # the newest ts still to delete, while a prune runs

    @property
    def bounded(self) -> bool:
        return self.max_age_s > 0 or self.max_rows > 0

    @property
    def running(self) -> bool:
        """A prune has more to delete: the next step goes on with it."""
        return self._bound is not None

    def step(self) -> None:
        """Start a prune when one is due, or go on with the one running: one chunk at most."""
        if not self.bounded:
            return
        try:
            if self._bound is None:
                if self._clock() < self._due:
                    return
                self._due = self._clock() + self.every_s
                self._bound = self.store.prune_bound(self.max_age_s, self.max_rows, time.time())
                if self._bound is None:
                    return
            deleted = self.store.prune(self._bound, self.chunk)
        except Exception:
            self._bound = None
            log.exception("could not delete old outcome records in %s", self.store.where)
            return
        self.pruned += deleted
        if deleted < self.chunk:
            self._bound = None
        log.debug("deleted %d old outcome records (%d so far)", deleted, self.pruned)
