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
        writers = _writer_processes(server.process.pid)
        assert 1 <= len(writers) <= int(workers)  # one per worker that recorded something
        own = set(writers.values()) == {server.process.pid}  # uvicorn: the server's own
        assert own == (workers == "1")  # gunicorn: each worker's
        report: dict[str, Any] = httpx.get(f"{server.url}/experiments/ab").json()
        assert report["verdict"] == "v2 better, always-valid p=0.002"
        assert [v["feedback"] for v in report["variants"]] == [40, 40]
        for _ in range(5):  # answered just before SIGTERM: committed on shutdown at the latest
            httpx.post(f"{server.url}/models/ab/versions/1/predict", json={"x0": 1})
    assert not any(Path(f"/proc/{pid}").exists() for pid in writers)  # they ended with it
    with running_server(args, tmp_path / "second.log") as server:
        after = httpx.get(f"{server.url}/experiments/ab").json()
    assert after["variants"][0]["requests"] == 45
    # the same comparison; only the latency guardrail counts the 5 requests without feedback
    kept = [{k: v for k, v in c.items() if k != "latency"} for c in after["comparisons"]]
    assert kept == [{k: v for k, v in c.items() if k != "latency"} for c in report["comparisons"]]
    assert after["verdict"] == report["verdict"]
    if workers != "1":
        return
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "experiments", "report", "ab", "--models", str(repo)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Verdict: v2 better, always-valid p=0.002" in done.stdout
    assert "0.950" in done.stdout  # v2's accuracy in the table


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])


def _writer_processes(server: int) -> dict[int, int]:
    """The outcome writer processes under the server process ``server``: pid -> parent pid."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"from modelport.outcomes.sink import main" not in (entry / "cmdline").read_bytes():
                continue
            parent = ancestor = _parent(int(entry.name))
            while ancestor not in (server, 0, 1):
                ancestor = _parent(ancestor)
        except (OSError, ValueError, IndexError):
            continue  # it exited meanwhile
        if ancestor == server:
            found[int(entry.name)] = parent
    return found


KEY = "e2e-admin"
ADMIN = {"Authorization": f"Bearer {KEY}"}
HALVES = {"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}


def _start(client: httpx.Client, name: str, metric: str | None = None) -> None:
    body = {"name": name, "traffic": {**HALVES, "sticky_header": "X-User-Id"}, "metric": metric}
    started = client.post("/admin/experiments/ab", json=body, headers=ADMIN)
    assert started.status_code == 201, started.text


def test_an_experiment_on_a_real_server_and_a_forced_80_20_delivery(tmp_path: Path) -> None:
    """A 50/50 experiment started through the admin API: predictions with feedback, one 404 to
    a missing version, then a report of exactly the two variants, with an ``srm`` object and an
    always-valid p-value on every comparison, on the experiment's metric ``value`` (the business
    value each feedback sends beside its label); then 80/20 delivered under the same 50/50 policy
    (requests pinned to a version) is flagged as a sample ratio mismatch."""
    repo = tmp_path / "repo"
    write_fake_model(repo, "ab", versions=(1, 2), parameters={"classes": CLASSES, "n_features": 1})
    env = {"MODELPORT_ADMIN_KEY": KEY}
    with (
        running_server([str(repo)], tmp_path / "server.log", env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        _start(client, "fair", metric="value")
        answered = []
        for i in range(120):  # every prediction first: their feedback finds them committed
            headers = {"X-User-Id": f"u{i}"}
            answer = client.post("/models/ab/predict", json={"x0": i % 2}, headers=headers)
            assert answer.status_code == 200, answer.text
            answered.append((answer.headers["x-request-id"], answer.headers["x-model-variant"]))
        for i, (request_id, variant) in enumerate(answered):
            converted = (i % 4 != 0) if variant == "v2" else (i % 4 == 0)  # 75 % against 25 %
            revenue = 20.0 * converted
            body = {"request_id": request_id, "label": CLASSES[i % 3 == 0], "value": revenue}
            assert client.post("/feedback", json=body).status_code == 200
        assert client.post("/models/ab/versions/7/predict", json={"x0": 1}).status_code == 404
        report = client.get("/experiments/ab").json()
        assert report["experiment"]["name"] == "fair"
        assert [v["variant"] for v in report["variants"]] == ["v1", "v2"]  # no phantom v7
        assert sum(v["requests"] for v in report["variants"]) == 120
        assert set(report["srm"]) == {"p_value", "expected", "observed", "mismatch"}
        assert report["srm"]["mismatch"] is False
        assert report["comparisons"]
        assert all(c["always_valid_p_value"] is not None for c in report["comparisons"])
        assert all(c["latency"] is not None for c in report["comparisons"])  # the guardrail
        assert report["metric"] == report["verdict_metric"] == "value"
        assert [v["value_feedback"] for v in report["variants"]] == [
            v["requests"] for v in report["variants"]
        ]
        means = [v["value"] for v in report["variants"]]
        assert 0 < means[0] < 10 < means[1] < 20, means
        (comparison,) = report["comparisons"]
        assert comparison["difference"] == pytest.approx(means[1] - means[0])
        assert report["verdict"].startswith("v2 better, always-valid p"), report["verdict"]
        assert client.post("/admin/experiments/ab/stop", headers=ADMIN).status_code == 200

        _start(client, "forced")
        for version, n in ((1, 80), (2, 20)):  # pinned: 80/20 under a 50/50 policy
            for _ in range(n):
                path = f"/models/ab/versions/{version}/predict"
                assert client.post(path, json={"x0": 1}).status_code == 200
        forced = client.get("/experiments/ab").json()
    assert forced["srm"]["observed"] == {"v1": 80, "v2": 20}
    assert forced["srm"]["expected"] == {"v1": 50.0, "v2": 50.0}
    assert forced["srm"]["mismatch"] is True
    assert forced["verdict"] == "sample ratio mismatch: results not trustworthy"
    assert forced["verdict_metric"] is None
