"""One in-process MLflow registry (a ``sqlite:`` store and local artifacts, no server) for the
registry tests that are not about the tracking server itself; tests register what they need."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.mlflow_registry import Registrar

# MLflow's own sqlite store, in this process, warns about SQLAlchemy features it still uses
MLFLOW_WARNINGS = [pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")]


@dataclass
class LocalRegistry:
    registrar: Registrar
    cache: Path
    folder: Path


@pytest.fixture(scope="package")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """``MLFLOW_TRACKING_URI`` and ``MODELPORT_REGISTRY_CACHE`` point at it while it lives."""
    folder = tmp_path_factory.mktemp("mlflow-local")
    cache = folder / "cache"
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "MODELPORT_REGISTRY_CACHE": str(cache),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    previous = os.getcwd()
    os.chdir(folder)  # the store's default experiment keeps its artifacts under ./mlruns
    try:
        registrar = Registrar(env["MLFLOW_TRACKING_URI"])
        registrar.client.search_experiments()  # creates the store (absolute artifact path)
    finally:
        os.chdir(previous)
    try:
        yield LocalRegistry(registrar, cache, folder)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
