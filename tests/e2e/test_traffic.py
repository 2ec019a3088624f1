"""Versions and live traffic against real servers on loopback: a rollout under continuous
concurrent load, a 90/10 sticky split and shadow traffic over HTTP, and a rollout reaching every
gunicorn worker."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from tests.helpers import running_server, write_fake_model

pytestmark = pytest.mark.e2e

KEY = "e2e-admin-key"
ADMIN = {"Authorization": f"Bearer {KEY}"}
ENV = {"MODELPORT_ADMIN_KEY": KEY}
ROW = {"x0": 1.0, "x1": 2.0}


class Load:
    """Client threads posting predictions back to back, recording every answer."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.answers: list[list[str]] = [[] for _ in range(threads)]
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, index: int) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    answer = client.post(f"{self.url}/predict", json=ROW)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code} {answer.text}")
                    continue
                self.answers[index].append(answer.headers["x-model-version"])

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def wait_for(self, version: str, answers: int = 20, timeout_s: float = 30) -> None:
        """Until every thread has had ``answers`` answers from ``version`` in a row."""
        deadline = time.monotonic() + timeout_s
        while not all(a[-answers:] == [version] * answers for a in self.answers):
            assert not self.failures, self.failures[:3]
            assert time.monotonic() < deadline, f"not all answers from v{version}"
            time.sleep(0.05)


def test_rollout_under_load_fails_no_request(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folder = write_fake_model(repo, "m", versions=(1,), parameters={"delay_s": 0.002})
    with running_server([str(repo)], tmp_path / "log", ENV) as server, Load(server.url) as load:
        load.wait_for("1")
        (folder / "2").mkdir()  # a new version lands in the repository
        (folder / "2" / "model.fake").write_text(yaml.safe_dump({"load_delay_s": 0.5}))
        rollout = httpx.post(f"{server.url}/admin/models/m/rollout/2", headers=ADMIN, timeout=30)
        assert rollout.status_code == 200, rollout.text
        load.wait_for("2")
        unload = httpx.post(
            f"{server.url}/admin/models/m/versions/1/unload", headers=ADMIN, timeout=60
        )
        assert unload.status_code == 200, unload.text
        load.wait_for("2", answers=40)
        rollback = httpx.post(f"{server.url}/admin/models/m/rollback", headers=ADMIN, timeout=30)
        assert rollback.status_code == 200, rollback.text  # v1 loads again, then serves
        load.wait_for("1")
    assert load.failures == []
    for answers in load.answers:  # each client saw v1, then v2, then v1: one switch each way
        switches = [b for a, b in itertools.pairwise(answers) if a != b]
        assert switches == ["2", "1"]


def test_sticky_split_and_shadow_over_http(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folder = write_fake_model(repo, "m", versions=(1, 2), default_version=1)
    (folder / "3").mkdir()
    (folder / "3" / "model.fake").write_text(yaml.safe_dump({"classes": ["shadow-a", "b"]}))
    policy = {
        "split": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
        "shadow": {"version": 3},
    }
    with running_server([str(repo)], tmp_path / "log", ENV) as server, httpx.Client() as client:
        put = client.put(f"{server.url}/admin/models/m/traffic", json=policy, headers=ADMIN)
        assert put.status_code == 200, put.text
        seen: dict[str, set[str]] = {}
        for round_ in range(2):
            for i in range(1000 if round_ == 0 else 200):
                user = f"user-{i}"
                answer = client.post(f"{server.url}/predict", json=ROW, headers={"X-User-Id": user})
                assert answer.status_code == 200
                assert "shadow" not in answer.text  # the shadow's answer is never returned
                seen.setdefault(user, set()).add(answer.headers["x-model-version"])
        assert all(len(versions) == 1 for versions in seen.values())  # sticky
        counts = Counter(next(iter(v)) for v in seen.values())
        assert set(counts) == {"1", "2"}
        assert 70 <= counts["2"] <= 130  # 100 expected of 1,000; sd 9.5
        deadline = time.monotonic() + 30
        while True:
            status = client.get(f"{server.url}/admin/models/m", headers=ADMIN).json()
            if status["shadow"] and status["shadow"]["requests"] >= 1200:
                break
            assert time.monotonic() < deadline, status["shadow"]
            time.sleep(0.05)
        shadow = status["shadow"]
        assert shadow["version"] == 3
        assert shadow["errors"] == 0
        assert shadow["recent"][-1]["prediction"][0] in ("shadow-a", "b")


def test_a_rollout_reaches_every_gunicorn_worker(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_fake_model(repo, "m", versions=(1, 2), default_version=1)
    args = [str(repo), "--workers", "2"]
    with running_server(args, tmp_path / "log", ENV) as server, Load(server.url) as load:
        load.wait_for("1")
        rollout = httpx.post(f"{server.url}/admin/models/m/rollout/2", headers=ADMIN, timeout=30)
        assert rollout.status_code == 200, rollout.text  # reached one worker
        load.wait_for("2", answers=50)  # the other applied it from the state file
    assert load.failures == []
