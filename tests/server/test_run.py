"""Running the server: the metrics port is opened only when there are metrics to serve, and
a repository where no model's card reads stops before serving."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from modelport.errors import CardError
from modelport.server.app import create_app
from modelport.server.run import _metrics_server, serve
from modelport.settings import Settings
from tests.helpers import free_port, write_fake_model


def test_metrics_off_opens_no_metrics_port(repo: Path) -> None:
    port = free_port()
    settings = Settings(models=repo, metrics=False, metrics_port=port, host="127.0.0.1")
    _metrics_server(settings, create_app(settings))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there


def test_serve_stops_only_when_no_models_card_reads(tmp_path: Path) -> None:
    """One broken card fails alone (tests/e2e/test_model_trust.py); all of them: nothing would
    serve, so `serve` stops before it listens, with the card's error."""
    for name in ("a", "b"):
        write_fake_model(tmp_path, name)
        (tmp_path / name / "modelport.yaml").write_text("runtime: [unclosed\n")
    with pytest.raises(CardError, match=r"a/modelport.yaml: not valid YAML"):
        serve(Settings(models=tmp_path, port=free_port()))


def test_one_untrusted_registry_model_fails_alone_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry model that loads only by running its own code (python_function only) is
    refused, with the command; a healthy model beside it still gets served. Only when every
    model is refused does `serve` stop before it listens."""
    from modelport.core import repository
    from modelport.errors import UntrustedArtifact
    from modelport.model.card import ModelCard
    from modelport.server import run
    from modelport.sources.mlmodel import PYFUNC

    write_fake_model(tmp_path, "good")
    (healthy,) = repository.scan(tmp_path)
    card = ModelCard(runtime=PYFUNC, source="models:/echo@champion")
    echo = repository.ModelSource("echo", card, None, {1: tmp_path / "cache" / "MLmodel"})
    started: list[Settings] = []
    monkeypatch.setattr(run, "_serve_uvicorn", lambda settings, limits: started.append(settings))
    monkeypatch.setattr(run, "scan", lambda path: [healthy, echo])
    serve(Settings(models=tmp_path, port=free_port()))
    assert len(started) == 1  # served: echo fails alone when it loads
    monkeypatch.setattr(run, "scan", lambda path: [echo])
    with pytest.raises(UntrustedArtifact, match="--trust models:/echo"):
        serve(Settings(models=tmp_path, port=free_port()))
