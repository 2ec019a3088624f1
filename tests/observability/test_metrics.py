"""/metrics in one process: names, labels, what is counted and what is not."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from modelport.core.context import RequestInfo
from modelport.core.registry import Registry
from modelport.observability import multiproc
from modelport.observability.metrics import Metrics
from tests.helpers import IRIS_ROW

OUT = {"capture_output": True, "text": True, "check": True}
EXPORTED = {
    "modelport_requests_total",
    "modelport_request_duration_seconds",
    "modelport_requests_in_flight",
    "modelport_queue_wait_seconds",
    "modelport_inference_duration_seconds",
    "modelport_batch_size",
    "modelport_queue_depth",
    "modelport_model_ready",
    "modelport_model_load_duration_seconds",
    "modelport_model_load_failures",
    "modelport_models_loaded",
    "modelport_outcomes_dropped_total",
    "modelport_outcomes_recording",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
}


def samples(text: str, name: str, **labels: str) -> list[float]:
    """Values of every sample called ``name`` whose labels include ``labels``."""
    return [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]


def total(text: str, name: str, **labels: str) -> float:
    return sum(samples(text, name, **labels))


@pytest.fixture
def fresh(make_client, repo: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with make_client(repo) as client:
        yield client


def test_predictions_are_counted_by_route_template_model_and_code(fresh: TestClient) -> None:
    for _ in range(5):
        assert fresh.post("/predict", json=IRIS_ROW).status_code == 200
    assert fresh.post("/models/wine/predict", json={"alcohol": 1}).status_code == 422
    fresh.get("/metrics")
    reply = fresh.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    text = reply.text
    ok = {"endpoint": "/predict", "protocol": "tutorial", "method": "POST", "code": "200"}
    assert total(text, "modelport_requests_total", **ok, model="iris", version="1") == 5
    assert total(text, "modelport_request_duration_seconds_count", endpoint="/predict") == 5
    bad = {"endpoint": "/models/{name}/predict", "code": "422"}
    assert total(text, "modelport_requests_total", **bad) == 1
    assert not samples(text, "modelport_requests_total", endpoint="/metrics")
    assert total(text, "modelport_queue_wait_seconds_count", model="iris", version="1") == 5
    assert total(text, "modelport_inference_duration_seconds_count", model="iris") == 5
    assert total(text, "modelport_batch_size_sum", model="iris") == 5  # one row each
    assert total(text, "modelport_requests_in_flight") == 0


def test_labels_are_templates_never_raw_paths(fresh: TestClient) -> None:
    body = {"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "FP64", "data": [5.1]}]}
    fresh.post("/v2/models/iris/infer", json=body)
    fresh.post("/v1/models/iris:predict", json={"instances": [list(IRIS_ROW.values())]})
    fresh.get("/no/such/path/42")
    fresh.post("/models/iris/versions/1/predict/batch", json={"instances": [IRIS_ROW]})
    fresh.get("/health")
    fresh.get("/v2/models/iris")
    fresh.get("/admin/models/iris")
    fresh.get("/admin/experiments")
    fresh.get("/experiments/iris")
    fresh.get("/docs")
    text = fresh.get("/metrics").text
    endpoints = {
        s.labels["endpoint"]: s.labels["protocol"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "modelport_requests_total"
    }
    assert endpoints == {
        "/v2/models/{name}/infer": "v2",
        "/v1/models/{name}:predict": "v1",
        "<unmatched>": "other",
        "/models/{name}/versions/{version}/predict/batch": "tutorial",
        "/health": "tutorial",
        "/v2/models/{name}": "v2",
        "/admin/models/{name}": "admin",
        "/admin/experiments": "admin",
        "/experiments/{model}": "outcomes",
        "/docs": "docs",
    }


def test_model_state_and_process_metrics(fresh: TestClient) -> None:
    text = fresh.get("/metrics").text
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {n for n in EXPORTED if not n.startswith("modelport_req")} - names <= {
        "modelport_queue_wait_seconds",
        "modelport_inference_duration_seconds",
        "modelport_batch_size",
        "modelport_queue_depth",
    }  # histograms and the queue appear with the first prediction
    assert samples(text, "modelport_model_ready", model="iris", version="1") == [1]
    assert samples(text, "modelport_models_loaded") == [3]
    assert samples(text, "modelport_model_load_failures", model="wine") == [0]
    assert samples(text, "modelport_model_load_duration_seconds", model="iris")[0] > 0
    assert samples(text, "process_resident_memory_bytes")[0] > 10_000_000


def test_a_failed_model_reads_not_ready(tmp_path: Path, make_client) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "models" / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.skops").write_bytes(b"not a model")
    with make_client(tmp_path / "models") as client:
        text = client.get("/metrics").text
    assert samples(text, "modelport_model_ready", model="broken") == [0]
    assert samples(text, "modelport_model_load_failures", model="broken") == [1]
    assert samples(text, "modelport_models_loaded") == [0]


def test_variant_and_version_come_from_the_request_info() -> None:
    metrics = Metrics(Registry([]))
    info = RequestInfo("id-1", model="iris", version=2, variant="canary")
    metrics.request("tutorial", "/predict", "POST", 200, 0.01, info)
    text = metrics.exposition().decode()
    labels = {"model": "iris", "version": "2", "variant": "canary", "code": "200"}
    assert total(text, "modelport_requests_total", **labels) == 1
    assert "id-1" not in text  # request ids never become labels


def test_metrics_answers_get_only(fresh: TestClient) -> None:
    assert fresh.post("/metrics").status_code == 405


def test_importing_modelport_does_not_import_the_metrics_client() -> None:
    # multiprocess mode must be chosen before prometheus_client is imported
    # (modelport.observability.multiproc)
    code = (
        "import sys, modelport, modelport.server.run, modelport.cli.main;"
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_methods_do_not_make_new_label_values() -> None:
    metrics = Metrics(Registry([]))
    for verb in ("BREW", "WHEN", "POST"):
        metrics.request("other", "<unmatched>", verb, 405, 0.001)
    text = metrics.exposition().decode()
    assert total(text, "modelport_requests_total", method="other") == 2
    assert total(text, "modelport_requests_total", method="POST") == 1


def test_live_gauges_of_dead_processes_are_reaped(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **OUT)
    dead, alive = int(finished.stdout), os.getpid()
    for pid in (dead, alive):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    assert multiproc.reap(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead}.db", f"counter_{alive}.db", f"gauge_livesum_{alive}.db"]
    )  # what a dead worker counted still counts; its live gauges do not


def test_a_given_metrics_folder_loses_only_prometheus_files(tmp_path: Path) -> None:
    """A folder named by PROMETHEUS_MULTIPROC_DIR is the user's: the previous run's metric files
    go, every other file stays byte for byte."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_12.db").write_bytes(b"old run")
    (folder / "gauge_livesum_12.db").write_bytes(b"old run")
    (folder / "mine.db").write_bytes(b"user data")
    (folder / "counter_notes.db").write_bytes(b"user data")
    code = "from modelport.observability import multiproc; multiproc.prepare()"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)  # a fresh interpreter
    kept = sorted(p.name for p in folder.iterdir() if p.suffix == ".db")
    assert kept == ["counter_notes.db", "mine.db"]
    assert (folder / "mine.db").read_bytes() == b"user data"


SCRAPE_WHILE_A_WORKER_STARTS = """
import os, pathlib, struct
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from modelport.observability.workerfiles import WorkerFiles
Counter("served", "served", registry=None).inc(3)
folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
pathlib.Path(folder, "counter_999999.db").write_bytes(b"")  # created, not sized yet
try:
    MultiProcessCollector(None, folder).collect()
except struct.error:
    print("prometheus_client alone fails")
registry = CollectorRegistry()
WorkerFiles(registry, folder)
print(generate_latest(registry).decode())
"""


def test_a_scrape_while_a_worker_starts_skips_its_empty_file(tmp_path: Path) -> None:
    """gunicorn starting a worker: its value file exists but is not sized; the scrape answers
    every other process's values instead of failing (a 500 on /metrics)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = SCRAPE_WHILE_A_WORKER_STARTS
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    first, text = out.split("\n", 1)
    assert first == "prometheus_client alone fails"
    assert total(text, "served_total") == 3
