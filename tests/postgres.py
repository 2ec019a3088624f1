"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package (``.ci/run`` installs it).

``initdb`` + ``pg_ctl`` on a free loopback port in a temporary folder, run as the ``postgres``
user when the tests run as root (PostgreSQL refuses root), stopped and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port

__all__ = ["cluster", "fresh_database", "postgres_bin"]


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def cluster(bin_dir: Path) -> Iterator[str]:
    """Start a cluster; yield its ``postgresql://`` URL (database ``postgres``)."""
    folder = Path(tempfile.mkdtemp(prefix="modelport-pg-"))
    data, port = folder / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    try:
        subprocess.run(
            _as_owner([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "modelport",
                       "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                       "-l", str(folder / "log"), "start"]),
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            yield f"postgresql://modelport@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                check=False, capture_output=True,
            )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(url: str) -> str:
    """Create an empty database in the cluster at ``url``; return its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"
