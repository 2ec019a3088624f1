r"""prometheus_client's multiprocess mode for gunicorn: every worker's metrics in one scrape.

:func:`prepare` runs in the gunicorn master before ``prometheus_client`` is first imported (the
client picks its storage at import): it makes a fresh directory for this run (or empties the one
``PROMETHEUS_MULTIPROC_DIR`` names) and exports it, so the master and every worker it forks keep
their values in files there. :func:`child_exit` (gunicorn's hook) marks a dead worker's gauges
dead, so ``livesum`` gauges (in-flight requests, queue depth) stop counting it while its counters
keep counting what it served; each scrape also :func:`reap`\ s workers that died unseen.
:func:`cleanup` removes a directory this run created.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError

__all__ = ["ENV", "child_exit", "cleanup", "master_pid", "prepare", "reap"]

ENV = "PROMETHEUS_MULTIPROC_DIR"
_METRIC_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")
_MASTER = "master.pid"


def prepare() -> tuple[Path, bool]:
    """The run's metrics directory, exported, and whether this run created it."""
    if "prometheus_client" in sys.modules:
        from prometheus_client import values

        if values.ValueClass is values.MutexValue:
            raise ConfigError(
                "prometheus_client was imported before the metrics directory was set up; "
                "metrics would count one worker only"
            )
    given = os.environ.get(ENV)
    if given:
        path, created = Path(given), False
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # a previous run's values are not this run's
            if _METRIC_FILE.fullmatch(stale.name):  # prometheus_client's own files, nothing else
                stale.unlink()
    else:
        path, created = Path(tempfile.mkdtemp(prefix="modelport-metrics-")), True
    (path / _MASTER).write_text(str(os.getpid()))
    os.environ[ENV] = str(path)
    return path, created


def master_pid(directory: Path) -> int | None:
    """The pid of the process that prepared ``directory`` (the gunicorn master)."""
    try:
        return int((directory / _MASTER).read_text())
    except (OSError, ValueError):
        return None


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook: the worker's live gauges stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap(directory: Path) -> list[int]:
    """Mark dead the processes whose live gauges are still there (a worker killed when no
    ``child_exit`` hook ran: a gunicorn started by hand, say); return their pids."""
    from prometheus_client import multiprocess

    pids = {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("gauge_live*_*.db")}
    dead = sorted(pid for pid in pids if not _alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    return dead


def cleanup(path: Path, created: bool) -> None:
    if created:
        shutil.rmtree(path, ignore_errors=True)
    elif os.environ.get(ENV) == str(path):
        (path / _MASTER).unlink(missing_ok=True)
