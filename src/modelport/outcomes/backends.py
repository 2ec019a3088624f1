"""Which outcome store a setting names: PostgreSQL for a ``postgresql://`` URL, SQLite for a
``sqlite:///`` URL or a file."""

from __future__ import annotations

from pathlib import Path

from modelport.errors import ConfigError
from modelport.outcomes.postgres_store import PostgresStore, redacted
from modelport.outcomes.sqlite_store import SqliteStore
from modelport.outcomes.store import Store

__all__ = ["open_store"]


def open_store(url: str | None = None, path: Path | None = None) -> Store:
    """PostgreSQL for a ``postgresql://`` URL, SQLite for ``sqlite:///file`` or ``path``."""
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            return PostgresStore(url)
        if url.startswith("sqlite:///"):
            return SqliteStore(Path(url.removeprefix("sqlite:///")))
        raise ConfigError(f"outcomes URL {redacted(url)!r}: use postgresql://... or sqlite:///...")
    if path is None:
        raise ConfigError("give the outcome store a database URL or a SQLite file")
    return SqliteStore(path)
