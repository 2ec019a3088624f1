"""A store that is contained, on real files: no memory map a failed write could turn into
SIGBUS, a deleted or replaced file reopened, a write to a lost file refused, failures logged at
most once a minute per kind and counted, recording that resumes by itself."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelport.errors import OutcomesUnavailable
from modelport.outcomes.backends import open_store
from modelport.outcomes.health import Health, error_kind
from modelport.outcomes.retention import Retention
from modelport.outcomes.sqlite_store import SqliteStore
from modelport.outcomes.writer import Writer
from tests.outcomes.helpers import pending, query, write

ROOT = Path(__file__).resolve().parents[2]


def test_a_new_store_maps_nothing_and_keeps_no_wal(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "db" / "o.db")
    write(store, [pending("a", ["yes"])])
    assert query(store, "PRAGMA journal_mode") == [("truncate",)]
    assert query(store, "PRAGMA mmap_size") == [(0,)]
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["o.db", "o.db-journal"]
    store.close()


def test_a_store_left_in_wal_mode_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    old = sqlite3.connect(path)
    assert old.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    old.execute("CREATE TABLE kept (x)")
    old.execute("INSERT INTO kept VALUES (1)")
    old.commit()
    old.close()
    store = open_store(path=path)
    assert query(store, "PRAGMA journal_mode") == [("truncate",)]
    assert query(store, "SELECT x FROM kept") == [(1,)]
    assert not (tmp_path / "o.db-wal").exists()
    assert not (tmp_path / "o.db-shm").exists()
    store.close()


IMMUTABLE = """
import json, subprocess, sys
from pathlib import Path
from tests.outcomes.helpers import pending
from modelport.outcomes.backends import open_store
from modelport.outcomes.writer import Writer
folder = Path(sys.argv[1])
writer = Writer(open_store(path=folder / "o.db"), max_delay_s=3600)
for i in range(50):
    writer.submit(pending(f"before{i}", ["yes"]))
assert writer.flush()
files = [str(p) for p in folder.iterdir()]
subprocess.run(["chattr", "+i", *files], check=True)
try:
    for i in range(500):
        writer.submit(pending(f"during{i}", ["yes"]))
        if i % 50 == 49:
            assert writer.flush()
    failing = (writer.health.state, writer.health.kind, writer.failed)
finally:
    subprocess.run(["chattr", "-i", *files], check=True)
writer.submit(pending("after", ["yes"]))
assert writer.flush()
kept = writer.store.request("after") is not None
print(json.dumps({"failing": failing, "state": writer.health.state, "written": writer.written,
                  "dropped": writer.health.dropped, "kept": kept}))
"""

RAW_WAL = """
import sqlite3, subprocess, sys
from pathlib import Path
folder = Path(sys.argv[1])
db = sqlite3.connect(folder / "o.db")
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE t (x)")
db.commit()
files = [str(p) for p in folder.iterdir()]
subprocess.run(["chattr", "+i", *files], check=True)
try:
    for i in range(2000):
        db.execute("INSERT INTO t VALUES (?)", ("x" * 1000,))
        db.commit()
except sqlite3.Error:
    pass
finally:
    subprocess.run(["chattr", "-i", *files], check=False)
"""


def test_immutable_files_fail_writes_instead_of_killing_the_process(tmp_path: Path) -> None:
    """All the store's files made immutable while a writer runs: in WAL mode SQLite dies of
    SIGBUS on its mapped ``-shm`` (shown first, in a raw connection); the store fails its
    batches, counts them, and records again once the files are writable."""
    wal = tmp_path / "wal"
    wal.mkdir()
    raw = subprocess.run([sys.executable, "-c", RAW_WAL, str(wal)], cwd=ROOT, check=False)
    subprocess.run(["chattr", "-R", "-i", str(wal)], check=True)
    assert raw.returncode == -7  # SIGBUS: what the probe saw
    folder = tmp_path / "store"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", IMMUTABLE, str(folder)], cwd=ROOT, capture_output=True,
        text=True, check=False, timeout=120,
    )  # fmt: skip
    subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    state, kind, failed = found["failing"]
    assert (state, failed) == ("failing", 500)
    assert kind in ("io_error", "read_only")
    assert (found["state"], found["written"], found["kept"]) == ("ok", 51, True)
    assert found["dropped"] == {"queue_full": 0, "store_error": 500, "unconvertible": 0}
    assert done.stderr.count("could not record") == 1  # ten failed batches, one line


def test_a_deleted_folder_is_recreated_and_nothing_claims_the_lost_file(tmp_path: Path) -> None:
    folder = tmp_path / ".modelport"
    store = open_store(path=folder / "o.db")
    assert isinstance(store, SqliteStore)
    write(store, [pending("before", ["yes"])])
    shutil.rmtree(folder)
    assert store.request("before") is None  # the lost file is not read either
    write(store, [pending("after", ["yes"])])
    assert (folder / "o.db").is_file()
    assert store.reopened == 1
    assert store.request("after") is not None

    def lose_the_file_mid_write() -> None:
        with store._transaction() as cursor:  # deleted between the check and the commit
            cursor.execute("INSERT INTO mp_feedback VALUES ('after', 0, 'yes', NULL, 1.0)")
            shutil.rmtree(folder)

    with pytest.raises(OutcomesUnavailable, match="deleted or replaced during this write"):
        lose_the_file_mid_write()
    assert store.put_feedback("after", 0, "yes", None) is False  # a new file: no feedback yet
    assert store.request("after") is None
    store.close()


def test_a_replaced_file_is_opened_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    store = open_store(path=path)
    write(store, [pending("old", ["yes"])])
    other = open_store(path=tmp_path / "other.db")
    write(other, [pending("other", ["yes"])])
    other.close()
    (tmp_path / "other.db").replace(path)  # a restored backup, say
    assert store.request("other") is not None
    assert store.request("old") is None
    store.close()


def test_failures_are_logged_once_a_minute_per_kind_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    health = Health(clock=lambda: now[0])
    health.opened("somewhere")
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO, "modelport.outcomes"):
        for _ in range(100):
            health.failed(full, 10)
            now[0] += 0.5
        health.failed(OutcomesUnavailable("lost"), 1)  # another kind: its own line
        now[0] += 60
        health.failed(full, 10)
        health.committed()
        health.committed()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    assert lines[0].startswith("could not record 10 predictions in somewhere (disk_full)")
    assert "file_lost" in lines[1]
    assert lines[2].endswith("(99 more like it in the last 60 s)")
    assert "again; 1011 records were dropped" in lines[3]
    assert health.dropped["store_error"] == 1011
    assert health.snapshot()["state"] == "ok"


def test_error_kinds() -> None:
    with contextlib.closing(sqlite3.connect(":memory:")) as db, pytest.raises(sqlite3.Error) as e:
        db.execute("INSERT INTO nothing VALUES (1)")
    assert error_kind(e.value) == "database_error"
    assert error_kind(OSError(28, "No space left on device")) == "disk_full"
    assert error_kind(OSError(30, "Read-only file system")) == "read_only"
    assert error_kind(ValueError("?")) == "unexpected"


def test_retention_bounds_the_file(tmp_path: Path) -> None:
    """Past ``max_rows`` the oldest requests go and SQLite reuses their pages: the file stops
    growing (a store kept a fixed size, whatever the traffic)."""
    path = tmp_path / "o.db"
    store = open_store(path=path)
    retention = Retention(store, max_rows=2_000, every_s=0)
    writer = Writer(store, max_delay_s=3600, retention=retention)
    sizes = []
    for batch in range(30):
        for i in range(500):
            writer.submit(pending(f"r{batch}-{i}", ["yes", "no"]))
        assert writer.flush()
        assert writer.flush()  # the prune after the batch has run
        sizes.append(path.stat().st_size)
    writer.close()
    assert query(store, "SELECT count(*) FROM mp_requests") == [(2_000,)]
    assert query(store, "SELECT count(*) FROM mp_predictions") == [(4_000,)]
    assert sizes[-1] <= sizes[9] * 1.1, sizes  # flat after the first 5,000 records
    store.close()
