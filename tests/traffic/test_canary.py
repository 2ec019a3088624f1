"""The automatic canary: the pure verdict, the monitor's windows, and both outcomes over HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelport.model.policy import AutoCanary, Canary, TrafficPolicy
from modelport.traffic.canary import CanaryMonitor, Verdict, Window, judge
from tests.conftest import ClientFactory
from tests.helpers import write_fake_model
from tests.traffic.test_rollout import ADMIN, KEY, ROW, add_version
from tests.traffic.test_router import put_policy

BOUNDS = AutoCanary(interval_s=10, min_requests=10, max_error_rate=0.1, max_p99_ms=100)
POLICY = TrafficPolicy(canary=Canary(baseline=1, version=2, auto=BOUNDS))


def window(requests: int, errors: int = 0, ms: float = 5.0, started: float = 0.0) -> Window:
    w = Window(POLICY, started, requests, errors)
    w.latencies_ms.extend([ms] * requests)
    return w


@pytest.mark.parametrize(
    ("w", "now", "verdict"),
    [
        (window(9, errors=9), 100, Verdict.WAIT),  # too few answers to judge
        (window(10), 5, Verdict.WAIT),  # in bounds, step not over
        (window(10), 10, Verdict.ADVANCE),
        (window(10, errors=1), 10, Verdict.ADVANCE),  # 10 % is the bound
        (window(10, errors=2), 1, Verdict.ROLLBACK),  # at once, before the interval
        (window(10, ms=150), 1, Verdict.ROLLBACK),
        (window(10, ms=99), 10, Verdict.ADVANCE),
    ],
)
def test_judge(w: Window, now: float, verdict: Verdict) -> None:
    assert judge(BOUNDS, w, now) is verdict


def test_the_monitor_judges_each_step_on_its_own_answers() -> None:
    policy: dict[str, TrafficPolicy | None] = {"m": POLICY}
    acted: list[tuple[str, Verdict]] = []
    now = [0.0]

    def act(name: str, verdict: Verdict, reason: str) -> None:
        acted.append((name, verdict))
        policy["m"] = None

    monitor = CanaryMonitor(policy.get, act, clock=lambda: now[0])
    monitor.observe("other", 500, 1)  # no policy: ignored
    for _ in range(9):
        monitor.observe("m", 200, 1)
    now[0] = 11
    assert acted == []
    monitor.observe("m", 500, 1)  # the tenth: 1 error in 10, in bounds, interval over
    assert acted == [("m", Verdict.ADVANCE)]
    assert monitor.events[-1]["verdict"] == "advance"
    assert "10 answers, 1 errors" in monitor.events[-1]["reason"]


def admin_status(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/admin/models/m", headers=ADMIN).json()
    return body


def drive(client: TestClient, done: Any, timeout_s: float = 20) -> dict[str, Any]:
    """Send predictions until ``done(status)`` holds."""
    deadline = time.monotonic() + timeout_s
    i = 0
    while not done(status := admin_status(client)):
        assert time.monotonic() < deadline, status
        for _ in range(10):
            i += 1
            client.post("/predict", json=ROW, headers={"X-User-Id": f"u{i}"})
    return status


def test_a_healthy_canary_advances_to_promotion(tmp_path: Path, make_client: ClientFactory) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2), default_version=1)
    auto = {"interval_s": 0.05, "min_requests": 3, "max_error_rate": 0.0}
    policy = {"canary": {"baseline": 1, "version": 2, "steps": [20, 50, 100], "auto": auto}}
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, policy)
        status = drive(client, lambda s: s["traffic"] is None)
        assert status["default_version"] == 2
        verdicts = [e["verdict"] for e in status["canary_events"]]
        assert verdicts == ["advance", "advance", "advance"]
        assert client.post("/predict", json=ROW).headers["x-model-version"] == "2"


def test_a_slow_canary_is_rolled_back(tmp_path: Path, make_client: ClientFactory) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,), default_version=1)
    add_version(folder, 2, delay_s=0.05)
    auto = {"interval_s": 60, "min_requests": 3, "max_p99_ms": 20}
    policy = {"canary": {"baseline": 1, "version": 2, "steps": [50, 100], "auto": auto}}
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, policy)
        status = drive(client, lambda s: s["traffic"] is None)
        assert status["default_version"] == 1
        assert [e["verdict"] for e in status["canary_events"]] == ["rollback"]
        assert "p99" in status["canary_events"][0]["reason"]
        for i in range(20):
            answer = client.post("/predict", json=ROW, headers={"X-User-Id": f"u{i}"})
            assert answer.headers["x-model-version"] == "1"
