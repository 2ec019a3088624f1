"""A/B test outcomes on real servers: predict, feedback, the report; a restart keeps it all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.helpers import running_server, write_fake_model

pytestmark = pytest.mark.e2e

CLASSES = ["no", "yes"]


def _ab_test(url: str, n: int, right: dict[int, int]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for version, hits in right.items():
            for i in range(n):
                answer = client.post(f"/models/ab/versions/{version}/predict", json={"x0": i % 2})
                assert answer.status_code == 200, answer.text
                label = answer.json()["prediction"]
                truth = label if i < hits else CLASSES[1 - CLASSES.index(label)]
                body = {"request_id": answer.headers["x-request-id"], "label": truth}
                assert client.post("/feedback", json=body).status_code == 200


@pytest.mark.parametrize("workers", ["1", "2"], ids=["uvicorn", "gunicorn"])
def test_predict_feedback_report_and_restart(tmp_path: Path, workers: str) -> None:
    repo = tmp_path / "repo"
    write_fake_model(repo, "ab", versions=(1, 2), parameters={"classes": CLASSES, "n_features": 1})
    args = [str(repo), "--workers", workers]
    with running_server(args, tmp_path / "first.log") as server:
        _ab_test(server.url, 40, {1: 20, 2: 38})  # v1 right 50 %, v2 right 95 %
        report: dict[str, Any] = httpx.get(f"{server.url}/experiments/ab").json()
        assert report["verdict"] == "v2 better, always-valid p=0.002"
        assert [v["feedback"] for v in report["variants"]] == [40, 40]
        for _ in range(5):  # answered just before SIGTERM: committed on shutdown at the latest
            httpx.post(f"{server.url}/models/ab/versions/1/predict", json={"x0": 1})
    with running_server(args, tmp_path / "second.log") as server:
        after = httpx.get(f"{server.url}/experiments/ab").json()
    assert after["variants"][0]["requests"] == 45
    assert after["comparisons"] == report["comparisons"]
    assert after["verdict"] == report["verdict"]
    if workers != "1":
        return
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "experiments", "report", "ab", "--models", str(repo)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Verdict: v2 better, always-valid p=0.002" in done.stdout
    assert "0.950" in done.stdout  # v2's accuracy in the table
