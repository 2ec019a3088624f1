"""The outcome store in PostgreSQL through psycopg 3 (the ``postgres`` extra): one database
shared by every replica. A connection the server dropped is replaced on the next use; the
transaction that met the drop fails (the writer counts its batch as failed, feedback answers 503
once).
"""

from __future__ import annotations

import contextlib
from typing import Any

from modelport.errors import MissingExtra
from modelport.hints import pip_extra
from modelport.outcomes.store import Store

__all__ = ["PostgresStore", "redacted"]

CONNECT_TIMEOUT_S = 10


class PostgresStore(Store):
    """PostgreSQL through psycopg 3: one database shared by every replica."""

    placeholder = "%s"

    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise MissingExtra(
                f"PostgreSQL outcomes need psycopg: {pip_extra('postgres')}"
            ) from exc
        self._url = url
        super().__init__(redacted(url))

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._url, connect_timeout=CONNECT_TIMEOUT_S)

    def _reconnect_if_lost(self) -> None:
        if self._connection.broken or self._connection.closed:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = self._connect()


def redacted(url: str) -> str:
    """The URL without its password, for logs and reports."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
