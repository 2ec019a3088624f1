"""The outcome store on SQLite and on a real PostgreSQL (a throwaway cluster for the session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.outcomes.backends import open_store
from modelport.outcomes.store import Store
from modelport.settings import Settings
from tests.postgres import cluster, fresh_database, postgres_bin


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    with cluster(bin_dir) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """Settings naming an empty store: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return {"models": tmp_path, "outcomes_db": tmp_path / "outcomes.db"}
    url = fresh_database(request.getfixturevalue("postgres_url"))
    return {"models": tmp_path, "outcomes_url": url}


@pytest.fixture
def store(backend: dict[str, object]) -> Iterator[Store]:
    settings = Settings(**backend)  # type: ignore[arg-type]
    opened = open_store(settings.outcomes_url, settings.outcomes_db)
    yield opened
    opened.close()
