"""The outcome store fails under a real server, and serving goes on: its files made immutable
(``chattr +i``), a full disk (a 1 MB tmpfs), its folder deleted mid-run. Each time predictions
answer 200, ``/ready`` and ``/metrics`` say recording fails, ``/feedback`` never claims a record
it did not keep, the log holds one line per failure kind, and recording resumes by itself."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.helpers import running_server, write_fake_model
from tests.observability.test_metrics import total
from tests.outcomes.helpers import fill, immutable, small_tmpfs

pytestmark = pytest.mark.e2e

CLASSES = ["no", "yes"]


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    write_fake_model(repo, "ab", parameters={"classes": CLASSES, "n_features": 1})
    return repo


def predict(client: httpx.Client) -> str:
    answer = client.post("/models/ab/predict", json={"x0": 1})
    assert answer.status_code == 200, answer.text
    return str(answer.headers["x-request-id"])


def feedback(client: httpx.Client, request_id: str) -> httpx.Response:
    return client.post("/feedback", json={"request_id": request_id, "label": "yes"})


def until(check: Callable[[], Any], timeout_s: float = 20) -> Any:
    """Poll ``check`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def outcomes_state(client: httpx.Client) -> dict[str, Any]:
    ready = client.get("/ready")
    assert ready.status_code == 200  # serving does not depend on the store
    detail: dict[str, Any] = ready.json()["outcomes"]
    return detail


def assert_failing_then_resumes(
    client: httpx.Client, kinds: set[str], make_writable: Callable[[], None]
) -> None:
    """Predictions answer while the store fails; feedback 503; then it records again."""
    for _ in range(200):
        predict(client)
    failing = until(lambda: (d := outcomes_state(client))["state"] == "failing" and d)
    assert failing["failure"] in kinds
    assert failing["dropped"]["store_error"] > 0
    metrics = client.get("/metrics").text
    assert total(metrics, "modelport_outcomes_dropped_total", reason="store_error") > 0
    assert total(metrics, "modelport_outcomes_recording") == 0
    lost = feedback(client, predict(client))
    assert (lost.status_code, lost.json()["code"]) == (503, "outcomes_unavailable"), lost.text
    make_writable()
    kept = predict(client)
    assert until(lambda: feedback(client, kept).status_code == 200)
    assert outcomes_state(client)["state"] == "ok"
    assert total(client.get("/metrics").text, "modelport_outcomes_recording") == 1


def test_immutable_store_files(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    with (
        running_server([str(repo)], tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert feedback(client, predict(client)).status_code == 200
        assert outcomes_state(client)["state"] == "ok"
        with immutable(repo / ".modelport") as files:
            assert {f.name for f in files} == {"outcomes.db", "outcomes.db-journal"}
            for _ in range(200):
                predict(client)
            failing = until(lambda: (d := outcomes_state(client))["state"] == "failing" and d)
            assert failing["failure"] in {"io_error", "read_only"}
            metrics = client.get("/metrics").text
            assert total(metrics, "modelport_outcomes_dropped_total", reason="store_error") > 0
            assert total(metrics, "modelport_outcomes_recording") == 0
            lost = feedback(client, predict(client))
            assert lost.status_code == 503, lost.text
        kept = predict(client)
        assert until(lambda: feedback(client, kept).status_code == 200)
        assert outcomes_state(client)["state"] == "ok"
        assert server.process.poll() is None  # alive: no SIGBUS
    log = server.output()
    assert log.count("could not record") == 1, log[-3000:]
    assert "Traceback" not in log


def test_a_full_disk(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    disk = tmp_path / "disk"
    env = {"MODELPORT_OUTCOMES_DB": str(disk / "outcomes.db")}
    with (
        small_tmpfs(disk),
        running_server([str(repo)], tmp_path / "server.log", env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert feedback(client, predict(client)).status_code == 200
        filler = disk / "filler"
        assert fill(filler) > 0
        started = time.monotonic()
        assert_failing_then_resumes(client, {"disk_full"}, filler.unlink)
        seconds = time.monotonic() - started
    log = server.output()
    assert log.count("could not record") == 1, log[-3000:]  # one line a minute, not per batch
    assert "Traceback" not in log
    assert "records were dropped while it failed (disk_full)" in log
    assert seconds < 60  # so the one line above is the whole minute's


@pytest.mark.parametrize("workers", ["1", "2"], ids=["uvicorn", "gunicorn"])
def test_the_store_folder_deleted_mid_run(tmp_path: Path, workers: str) -> None:
    repo = _repo(tmp_path)
    folder = repo / ".modelport"
    args = [str(repo), "--workers", workers]
    with (
        running_server(args, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        before = predict(client)
        assert feedback(client, before).status_code == 200
        shutil.rmtree(folder)
        after = [predict(client) for _ in range(20)]  # each worker's writer sees the loss
        for request_id in after:  # recorded in the file made again, by either worker
            assert until(lambda r=request_id: feedback(client, r).status_code == 200)  # type: ignore[misc]
        gone = feedback(client, before)  # its record went with the folder: never "recorded"
        assert (gone.status_code, gone.json()["code"]) == (404, "unknown_request")
        assert (folder / "outcomes.db").is_file()
        report = client.get("/experiments/ab").json()
        assert report["variants"][0]["feedback"] == 20
        assert outcomes_state(client)["state"] == "ok"
    assert "was deleted or replaced: opening it again" in server.output()
