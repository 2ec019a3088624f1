"""The server's end of its outcome writer process (:mod:`.sink`): start it, hand it a batch's
rows, wait for the commit, stop it.

Used by the writer thread only (:class:`.writer.Writer`), one batch at a time. Every wait has a
deadline; a process that exits or stops answering raises :class:`~modelport.errors.WriterLost`
and is killed, and the writer commits that batch itself (rows already committed are not written
twice: ids seen before are skipped, and so are their totals).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from modelport.errors import WriterLost
from modelport.outcomes import frames
from modelport.outcomes.health import Failure, log_traced
from modelport.outcomes.records import PredictionRow, RequestRow

__all__ = ["ANSWER_S", "START_S", "WriterProcess"]

START_S = 60.0  # to start and open the store (a lock another process holds: 30 s)
ANSWER_S = 120.0  # to commit one batch (each lock it waits for: 30 s)

log = logging.getLogger("modelport.outcomes")


class WriterProcess:
    """A running writer process with its store open; raises :class:`WriterLost` when it cannot
    be started or cannot open the store."""

    def __init__(self, url: str | None, path: Path | None) -> None:
        env = dict(os.environ)  # this modelport, wherever the server found it
        root = str(Path(__file__).resolve().parents[2])  # the folder holding modelport/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelport.outcomes.sink"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            raise WriterLost(f"could not start the outcome writer process: {exc}") from exc
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:  # (never: both are pipes)
            self.process.kill()
            self.process.wait()
            raise WriterLost("the outcome writer process has no pipes")
        self._pipes = (stdin, stdout)
        self._requests, self._answers = stdin.fileno(), stdout.fileno()
        os.set_blocking(self._requests, False)
        os.set_blocking(self._answers, False)
        level = log.getEffectiveLevel()
        try:
            failure = self._ask((url, None if path is None else str(path), level), START_S)
        except WriterLost:
            self.kill()
            raise
        if failure is not None:
            self.close()
            raise WriterLost(
                f"the outcome writer process could not open the store: {failure.error}"
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def write(
        self, requests: Sequence[RequestRow], predictions: Sequence[PredictionRow], piece: int
    ) -> Failure | None:
        """Commit one batch's rows (:meth:`.store.Store.write`); the failure, if it failed."""
        try:
            return self._ask((list(requests), list(predictions), piece), ANSWER_S)
        except WriterLost:
            self.kill()
            raise

    def _ask(self, message: object, timeout: float) -> Failure | None:
        frames.send(self._requests, message, timeout)
        while True:
            answer = frames.receive(self._answers, timeout)
            if not isinstance(answer, tuple) or not answer:
                raise WriterLost(f"the outcome writer process answered {answer!r}")
            if answer[0] != "log":
                failure: Failure | None = answer[1]
                return failure
            _relay(*answer[1:])

    def close(self, timeout: float = 30.0) -> None:
        """End the process once it has committed what it was sent; kill it after ``timeout``."""
        self._close_pipe(0)  # the end of its input
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the outcome writer process did not stop in %.0f s: killing it", timeout)
        self.kill()

    def kill(self) -> None:
        """Stop the process now (a no-op once it has exited) and close both pipes."""
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        self._close_pipe(0)
        self._close_pipe(1)

    def _close_pipe(self, which: int) -> None:
        with contextlib.suppress(OSError):
            self._pipes[which].close()


def _relay(name: str, level: int, message: str, trace: str | None) -> None:
    """Log a record of the writer process in this one's log."""
    log_traced(logging.getLogger(name), level, message, (), trace)
