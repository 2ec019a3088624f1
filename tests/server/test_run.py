"""Running the server: the metrics port is opened only when there are metrics to serve."""

from __future__ import annotations

import socket
from pathlib import Path

from modelport.server.app import create_app
from modelport.server.run import _metrics_server
from modelport.settings import Settings
from tests.helpers import free_port


def test_metrics_off_opens_no_metrics_port(repo: Path) -> None:
    port = free_port()
    settings = Settings(models=repo, metrics=False, metrics_port=port, host="127.0.0.1")
    _metrics_server(settings, create_app(settings))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there
