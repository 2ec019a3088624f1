"""The outcome writer process: it commits what the writer thread hands it, reports failures and
logs to the server, and its loss (killed, stopped, never started) loses no record and counts
none twice."""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import WriterLost
from modelport.outcomes import child as child_module
from modelport.outcomes import frames
from modelport.outcomes import sink as sink_module
from modelport.outcomes.backends import open_store
from modelport.outcomes.child import WriterProcess
from modelport.outcomes.service import Outcomes
from modelport.outcomes.sink import Relay
from modelport.outcomes.store import Store
from modelport.outcomes.writer import Writer
from modelport.server.logs import JsonFormatter
from modelport.settings import Settings
from tests.outcomes.helpers import pending, query, write

IDLE = 3600.0  # a writer delay no test reaches: the writer wakes only when flushed or closed
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(path=tmp_path / "o.db")
    yield opened
    opened.close()


@pytest.fixture
def writer(store: Store, tmp_path: Path) -> Iterator[Writer]:
    spawn = functools.partial(WriterProcess, None, tmp_path / "o.db")
    made = Writer(store, max_delay_s=IDLE, spawn=spawn)
    yield made
    made.close()


def totals(store: Store) -> tuple[int, int, int]:
    """Stored requests, predicted rows, and the requests the per-minute totals count."""
    (requests,), (rows,), (summed,) = (
        query(store, "SELECT count(*) FROM mp_requests")[0],
        query(store, "SELECT count(*) FROM mp_predictions")[0],
        query(store, "SELECT coalesce(sum(requests), 0) FROM mp_rollup")[0],
    )
    return int(requests), int(rows), int(summed)


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def first_process(writer: Writer) -> WriterProcess:
    """The writer process, started by a first batch (committed)."""
    writer.submit(pending("first", ["yes"]))
    assert writer.flush()
    assert writer.child is not None
    return writer.child


def wait_exit(pid: int, timeout: float = 30.0) -> bool:
    """Whether the process ``pid`` (not necessarily this one's child) exits within ``timeout``."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(fd)


def test_the_writer_process_commits_each_batch_and_imports_no_numpy(
    writer: Writer, store: Store
) -> None:
    for i in range(300):
        writer.submit(pending(f"r{i}", ["yes"]))
    assert writer.flush()
    child = writer.child
    assert child is not None
    assert child.pid != os.getpid()
    assert running(child.pid)
    cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1] == b"-I"  # the server's working directory shadows no module
    assert b"from modelport.outcomes.sink import main" in cmdline[3]
    assert os.getsid(child.pid) == child.pid  # a session of its own: Ctrl-C is the server's
    assert b"numpy" not in Path(f"/proc/{child.pid}/maps").read_bytes()  # the store, no more
    assert (writer.written, writer.failed, writer.lost) == (300, 0, 0)
    assert totals(store) == (300, 300, 300)
    assert store.prediction("r7", 0) == ("yes", None)
    writer.submit(pending("later", ["no"]))
    assert writer.flush()
    assert writer.child is child  # one process for every batch
    assert totals(store) == (301, 301, 301)


# the writer process with a spy on sched_yield, which says how many offers it made as it exits
_COUNTED = (
    "import atexit, os, sys\n"
    "sys.path.insert(0, {src!r})\n"
    "real, offers = os.sched_yield, []\n"
    "def counted():\n"
    "    offers.append(None)\n"
    "    real()\n"
    "os.sched_yield = counted\n"
    "atexit.register(lambda: print('offers', len(offers), file=sys.stderr))\n"
    "from modelport.outcomes.sink import main\n"
    "sys.exit(main())\n"
)


def test_the_writer_process_offers_its_cpu_while_it_works(tmp_path: Path) -> None:
    """Between two pieces of a batch (converting, summing up) and every ``OFFER_STEPS`` steps of
    SQLite's statements, so that a request waking the server beside it is not held up for the
    rest of the batch (what that does to the p99 is measured by ``make bench``)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _COUNTED.format(src=str(ROOT / "src"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stdout is not None
    requests, answers = process.stdin.fileno(), frames.Reader(process.stdout.fileno())
    deadline = time.monotonic() + 60
    frames.send(requests, ("open", None, str(tmp_path / "o.db"), logging.WARNING))
    assert answers.receive(deadline) == ("done", None)
    frames.send(requests, ("records", [pending(f"r{i}", ["yes"]) for i in range(1000)]))
    frames.send(requests, ("commit", 0.0, 100))  # pieces of 100 records
    kind, written = answers.receive(deadline)  # type: ignore[misc]
    assert (kind, written.requests, written.failure) == ("done", 1000, None)
    process.stdin.close()  # its end: it exits
    assert process.wait(60) == 0
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    found = re.search(rb"offers (\d+)", stderr)
    assert found is not None, stderr
    pieces = 2 * (1000 // 100 - 1)  # converted, then summed up
    steps = 1000 * 50 // sink_module.OFFER_STEPS  # (SQLite takes about 60 steps a record)
    assert int(found.group(1)) >= pieces + steps
    assert totals(open_store(path=tmp_path / "o.db")) == (1000, 1000, 1000)


def test_a_batch_goes_to_the_writer_process_in_one_write(
    writer: Writer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every write to the pipe hands the GIL back to the event loop and takes it again: the
    # request pipe holds a busy batch whole (Linux's default 64 KB: about 600 records)
    child = first_process(writer)
    writes: list[int] = []
    real = os.write

    def counted(fd: int, data: Any) -> int:
        if fd == child._requests:
            writes.append(len(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", counted)  # (frames looks it up at each call)
    for i in range(child_module.SEND_RECORDS):  # about 110 KB: more than a default pipe holds
        writer.submit(pending(f"r{i}", ["yes"]))
    assert writer.flush()
    assert len(writes) == 1
    assert writes[0] > 1 << 16
    for i in range(child_module.SEND_RECORDS + 1):  # past one part: two writes
        writer.submit(pending(f"s{i}", ["yes"]))
    assert writer.flush()
    assert len(writes) == 3
    assert totals(store) == (5002, 5002, 5002)
    probe_read, probe_write = os.pipe()  # what this system lets a pipe hold
    try:
        grown = fcntl.fcntl(probe_write, fcntl.F_SETPIPE_SZ, child_module.PIPE_BYTES)
    except OSError:
        grown = fcntl.fcntl(probe_write, fcntl.F_GETPIPE_SZ)
    finally:
        os.close(probe_read)
        os.close(probe_write)
    assert fcntl.fcntl(child._requests, fcntl.F_GETPIPE_SZ) == grown


def test_a_killed_writer_process_loses_nothing_and_another_one_starts(
    writer: Writer, store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = first_process(writer)
    os.kill(first.pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, "modelport.outcomes"):
        for i in range(50):
            writer.submit(pending(f"r{i}", ["yes"]))
        assert writer.flush()
    assert (writer.lost, writer.child) == (1, None)
    assert first.process.returncode == -signal.SIGKILL  # reaped: no zombie
    assert f"the outcome writer process {first.pid} was lost" in caplog.text
    assert totals(store) == (51, 51, 51)  # its batch was committed here
    assert writer.health.state == "ok"
    monkeypatch.setattr(writer, "_spawn_after", 0.0)  # RESPAWN_S has passed
    writer.submit(pending("next", ["yes"]))
    assert writer.flush()
    assert writer.child is not None
    assert writer.child.pid != first.pid
    assert totals(store) == (52, 52, 52)


def test_a_writer_process_out_of_step_is_killed_and_the_batch_written_here(
    writer: Writer, store: Store
) -> None:
    broken = first_process(writer)
    broken._pipes[0].close()  # its input closed under it: writing raises OSError (EBADF)
    writer.submit(pending("second", ["yes"]))
    assert writer.flush()
    assert (writer.lost, writer.child) == (1, None)
    assert broken.process.returncode == -signal.SIGKILL
    assert totals(store) == (2, 2, 2)


def test_a_batch_committed_twice_counts_once(store: Store) -> None:
    """A writer process lost after its commit, before its answer: the server writes that batch
    again, and the rows and the per-minute totals stay as they were."""
    batch = [pending(f"r{i}", ["yes"]) for i in range(20)]
    write(store, batch, offset=time.time() - time.perf_counter())
    assert totals(store) == (20, 20, 20)
    write(store, batch, offset=time.time() - time.perf_counter())  # the same rows, same ts
    assert totals(store) == (20, 20, 20)


def test_a_writer_process_that_stops_answering_is_killed(
    writer: Writer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped = first_process(writer)
    monkeypatch.setattr(child_module, "ANSWER_S", 0.5)
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        writer.submit(pending("second", ["yes"]))
        assert writer.flush()
    finally:
        if stopped.process.returncode is None:
            os.kill(stopped.pid, signal.SIGCONT)
    assert stopped.process.returncode == -signal.SIGKILL
    assert (writer.lost, writer.child) == (1, None)
    assert totals(store) == (2, 2, 2)


def test_a_store_error_in_the_writer_process_reaches_health_and_the_log(
    writer: Writer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    bad = pending("bad", ["yes"])
    with caplog.at_level(logging.ERROR, "modelport.outcomes"):
        writer.submit((*bad[:2], None, *bad[3:]))  # type: ignore[arg-type] # model: NOT NULL
        assert writer.flush()
    assert writer.child is not None  # it failed there, and goes on
    assert (writer.failed, writer.written) == (1, 0)
    assert (writer.health.state, writer.health.kind) == ("failing", "database_error")
    assert writer.health.error is not None
    assert writer.health.error.startswith("IntegrityError: NOT NULL constraint failed")
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "could not record 1 predictions" in record.getMessage()
    assert record.exc_text is not None  # the writer process's traceback, shown as exc_info's
    assert "sqlite3.IntegrityError" in record.exc_text
    assert "in write" in record.exc_text
    shown = json.loads(JsonFormatter().format(record))
    assert shown["exception"] == record.exc_text
    assert "Traceback (most recent call last)" in logging.Formatter().format(record)
    writer.submit(pending("good", ["yes"]))
    assert writer.flush()
    assert (writer.failed, writer.written, writer.health.state) == (1, 1, "ok")


def test_an_answer_the_writer_process_cannot_convert_fails_alone(
    writer: Writer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.perf_counter()
    with caplog.at_level(logging.ERROR, "modelport.outcomes"):
        writer.submit(("bad", started, "m", 1, "v1", 1.0, 200, "regression", ["x"]))
        writer.submit(pending("good", ["yes"]))
        assert writer.flush()
    assert writer.child is not None  # converted there
    assert (writer.failed, writer.written) == (1, 1)
    assert writer.health.dropped["unconvertible"] == 1
    (record,) = caplog.records
    assert record.getMessage() == "could not record the answer of request bad"
    assert record.exc_text is not None
    assert "ValueError: could not convert string to float: 'x'" in record.exc_text
    assert totals(store) == (1, 1, 1)


def test_the_writer_process_logs_reach_the_server_log(
    writer: Writer, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer.submit(pending("first", ["yes"]))
    assert writer.flush()
    (tmp_path / "o.db").unlink()  # the writer process notices, and opens it again
    with caplog.at_level(logging.WARNING, "modelport.outcomes"):
        writer.submit(pending("second", ["yes"]))
        assert writer.flush()
    found = [r for r in caplog.records if "was deleted or replaced" in r.getMessage()]
    assert [r.name for r in found] == ["modelport.outcomes"]
    assert writer.child is not None
    assert (writer.written, writer.lost) == (2, 0)


def test_a_logged_traceback_is_relayed_as_text() -> None:
    read, write = os.pipe()
    logger = logging.getLogger("modelport.outcomes.relay-test")
    logger.propagate = False
    logger.addHandler(Relay(write))
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
        logger.warning("no traceback here")
        reader = frames.Reader(read)
        name, level, message, traced = reader.receive()[1:]  # type: ignore[index]
        assert (name, level, message) == (logger.name, logging.ERROR, "it failed")
        assert traced.startswith("Traceback (most recent call last):")
        assert traced.endswith("ValueError: boom")
        assert reader.receive() == ("log", logger.name, logging.WARNING, "no traceback here", None)
    finally:
        logger.handlers.clear()
        os.close(read)
        os.close(write)


def test_a_writer_process_that_cannot_start_leaves_the_writing_here(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    spawn = functools.partial(WriterProcess, None, tmp_path / "o.db")
    writer = Writer(store, max_delay_s=IDLE, spawn=spawn)
    try:
        with caplog.at_level(logging.WARNING, "modelport.outcomes"):
            writer.submit(pending("a", ["yes"]))
            assert writer.flush()
            writer.submit(pending("b", ["yes"]))
            assert writer.flush()  # not tried again before RESPAWN_S
        assert writer.child is None
        assert totals(store) == (2, 2, 2)
        starts = [r for r in caplog.records if "could not start the outcome writer" in r.message]
        assert len(starts) == 1
        assert "this process writes the outcome store for the next 5 s" in starts[0].message
    finally:
        writer.close()


def test_a_writer_process_that_cannot_open_the_store_says_why(tmp_path: Path) -> None:
    (tmp_path / "a-folder.db").mkdir()
    with pytest.raises(WriterLost, match="could not open the store: OperationalError"):
        WriterProcess(None, tmp_path / "a-folder.db")


PARENT = """
import os, signal, sys, time
from pathlib import Path
from modelport.outcomes.service import Outcomes
from modelport.outcomes.sink import Relay
from modelport.settings import Settings
folder = Path(sys.argv[1])
# what a terminal gives a server: a shell that starts a job in the background without job
# control (a CI runner's "make test &") leaves SIGINT ignored, and Ctrl-C would never come
signal.signal(signal.SIGINT, signal.default_int_handler)
outcomes = Outcomes(Settings(models=folder, outcomes_db=folder / "o.db"), max_delay_s=3600)
outcomes.open()
for i in range(10):
    outcomes.record(f"r{i}", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
outcomes.flush()
writer = outcomes.writer
child = writer.child
print(child.pid, flush=True)
for i in range(10, 500):  # queued, not yet committed
    outcomes.record(f"r{i}", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
if sys.argv[2] == "crash":
    os._exit(9)  # no close: the writer process sees the end of its input
try:
    os.killpg(os.getpgrp(), signal.SIGINT)  # Ctrl-C reaches the whole process group
    signal.pause()
except KeyboardInterrupt:
    outcomes.close()  # what the server's shutdown does
print("closed", writer.lost, child.process.returncode, flush=True)
"""


def test_ctrl_c_leaves_the_writer_process_to_commit_what_is_queued(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PARENT, str(tmp_path), "interrupt"],
        cwd=ROOT, capture_output=True, text=True, timeout=90, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid, *closed = done.stdout.split()
    assert closed == ["closed", "0", "0"]  # it ignored Ctrl-C, committed, and ended cleanly
    assert wait_exit(int(pid))
    store = open_store(path=tmp_path / "o.db")
    try:
        assert totals(store) == (500, 0, 500)
    finally:
        store.close()


def test_a_crashed_server_leaves_no_writer_process_behind(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PARENT, str(tmp_path), "crash"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 9, done.stderr
    assert wait_exit(int(done.stdout.split()[0]))


def test_outcomes_commit_in_a_writer_process_unless_turned_off(tmp_path: Path) -> None:
    for process in (True, False):
        folder = tmp_path / str(process)
        settings = Settings(models=folder, outcomes_db=folder / "o.db", outcomes_process=process)
        outcomes = Outcomes(settings, max_delay_s=IDLE)
        outcomes.open()
        assert outcomes.writer is not None
        assert outcomes.writer.child is None  # started with the first batch, not before
        outcomes.record("a", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
        outcomes.flush()
        assert (outcomes.writer.child is not None) is process
        assert outcomes.store is not None
        assert outcomes.store.request("a") is not None
        child = outcomes.writer.child
        outcomes.close()
        if child is not None:
            assert child.process.returncode == 0  # it ended with the server, cleanly
