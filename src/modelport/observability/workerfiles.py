"""Every worker's metric files for one scrape, minus the one a starting worker has not sized yet.

prometheus_client creates a process's value file empty and sizes it a moment later; a scrape in
between (a worker starting or restarting under gunicorn) cannot read it and would answer 500. Such
a file holds no values yet, so leaving it out loses nothing, and a file only grows, so once it is
sized it reads.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["WorkerFiles"]

_HEADER = 8  # the used-bytes word and its padding, written when a file is sized


class WorkerFiles(MultiProcessCollector):
    """prometheus_client's multiprocess collector over the files that are ready to read."""

    def collect(self) -> Any:
        return self.merge(_ready(self._path), accumulate=True)  # type: ignore[no-untyped-call]


def _ready(directory: str) -> list[str]:
    """The value files in ``directory`` that some process has sized."""
    found = []
    for name in glob.glob(os.path.join(directory, "*.db")):
        try:
            if os.stat(name).st_size >= _HEADER:
                found.append(name)
        except FileNotFoundError:  # a dead worker's file, removed as we looked
            continue
    return found
