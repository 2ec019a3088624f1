from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, running_server


@pytest.fixture(scope="module")
def server(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real modelport server on loopback serving iris, wine and sentiment."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server([str(repo)], log) as running:
        yield running
