"""The server's end of its outcome writer process (:mod:`.sink`): start it, hand it a batch,
wait for the commit, stop it.

Used by the writer thread only (:class:`.writer.Writer`), one batch at a time. Every wait has a
deadline; a process that exits or stops answering raises :class:`~modelport.errors.WriterLost`;
the writer kills it and commits that batch itself (rows already committed are not written
twice: ids seen before are skipped, and so are their totals).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from modelport.errors import WriterLost
from modelport.outcomes import frames
from modelport.outcomes.health import Failure, log_traced
from modelport.outcomes.records import Pending
from modelport.outcomes.sink import Written

__all__ = ["ANSWER_S", "PIPE_BYTES", "SEND_RECORDS", "START_S", "WriterProcess"]

START_S = 60.0  # to start and open the store (a lock another process holds: 30 s)
ANSWER_S = 120.0  # to take and commit one batch (each lock it waits for: 30 s)
STOP_S = 5.0  # for a killed process to be gone
PIPE_BYTES = 1 << 20  # the request pipe's buffer (Linux's default 64 KB holds about 600 records)
SEND_RECORDS = 2_500  # records pickled in one hold of the GIL (about 0.3 ms), and sent in one write
# isolated (-I): neither the server's working directory nor PYTHON* variables shadow a module;
# the folder this modelport came from is searched last
_MAIN = (
    "import sys; sys.path.append({root!r}); "
    "from modelport.outcomes.sink import main; sys.exit(main())"
)

log = logging.getLogger("modelport.outcomes")


class WriterProcess:
    """A running writer process with its store open; raises :class:`WriterLost` when it cannot
    be started or cannot open the store.

    It runs in a session of its own: a terminal's Ctrl-C, meant for the server, never reaches it
    (the server commits what is queued at shutdown, then closes the writer process's input)."""

    def __init__(self, url: str | None, path: Path | None) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the folder holding modelport/
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", _MAIN.format(root=root)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                start_new_session=True,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            raise WriterLost(f"could not start the outcome writer process: {exc}") from exc
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:  # (never: both are pipes)
            self.kill()
            raise WriterLost("the outcome writer process has no pipes")
        self._pipes = (stdin, stdout)
        self._requests, self._answers = stdin.fileno(), stdout.fileno()
        os.set_blocking(self._requests, False)
        os.set_blocking(self._answers, False)
        with contextlib.suppress(OSError, AttributeError):  # (past the system's bound: 64 KB)
            fcntl.fcntl(self._requests, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._reader = frames.Reader(self._answers)
        opening = ("open", url, None if path is None else str(path), log.getEffectiveLevel())
        try:
            failure = self._ask([frames.encode(opening)], START_S)
        except WriterLost:
            self.kill()
            raise
        if isinstance(failure, Failure):
            self.close()
            raise WriterLost(
                f"the outcome writer process could not open the store: {failure.error}"
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def write(self, records: Sequence[Pending], offset: float, piece: int) -> Written:
        """Convert and commit one batch (:func:`.sink.commit`, ``piece`` records to a statement).
        Its records are pickled :data:`SEND_RECORDS` at a time (about 0.13 µs a record: 106 µs
        for 800), each part in one write (the last with the request to commit), since every
        release of the GIL here is one the event loop has to hand back: a batch that wakes the
        writer early (2,500 records) takes it back three times (the write, the wait for the
        answer, its read), not a few per piece. Raises :class:`WriterLost`; the caller then
        kills the process (:meth:`kill`)."""
        written = self._ask(_parts(records, offset, piece), ANSWER_S)
        if not isinstance(written, Written):
            raise WriterLost(f"the outcome writer process answered {written!r}")
        return written

    def _ask(self, parts: Iterable[bytes], timeout: float) -> object:
        """Write ``parts`` (each one write, made when it is its turn) and wait for the answer to
        the last message, all within ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            for data in parts:
                frames.write(self._requests, data, deadline)
            while True:
                answer = self._reader.receive(deadline)
                if not isinstance(answer, tuple) or len(answer) < 2:
                    raise WriterLost(f"the outcome writer process answered {answer!r}")
                if answer[0] != "log":
                    return answer[1]
                _relay(*answer[1:])
        except WriterLost as exc:
            if time.monotonic() >= deadline:
                raise WriterLost(f"no answer in {timeout:.0f} s") from exc
            raise

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
        try:
            self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:  # (stuck in the kernel: reaped by a later wait)
            log.warning("the outcome writer process %d did not exit when killed", self.pid)
        for which in (0, 1):
            self._close_pipe(which)

    def _close_pipe(self, which: int) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self._pipes[which].close()


def _parts(records: Sequence[Pending], offset: float, piece: int) -> Iterator[bytes]:
    """A batch's writes: :data:`SEND_RECORDS` records at a time, the request to commit with the
    last."""
    starts = range(0, max(len(records), 1), SEND_RECORDS)
    for first in starts:
        data = frames.encode(("records", records[first : first + SEND_RECORDS]))
        yield data + frames.encode(("commit", offset, piece)) if first == starts[-1] else data


def _relay(name: str, level: int, message: str, trace: str | None) -> None:
    """Log a record of the writer process in this one's log."""
    log_traced(logging.getLogger(name), level, message, (), trace)
