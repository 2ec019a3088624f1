"""Overload on a real server: while a model's queue stands, a prediction gets its 503 with
``Retry-After`` before its body is read (the cheap refusal), and every answer is 200 or 503."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.test_limits import _connection, _head, _status, _until_closed
from tests.helpers import running_server, write_fake_model

pytestmark = pytest.mark.e2e


def test_an_overloaded_model_refuses_before_reading_the_body(tmp_path: Path) -> None:
    card = {"parameters": {"delay_s": 0.2}, "batching": {"max_batch_size": 1, "max_wait_ms": 50}}
    write_fake_model(tmp_path / "repo", "slow", **card)
    env = {"MODELPORT_BODY_TIMEOUT": "1", "MODELPORT_OUTCOMES": "false"}
    with running_server([str(tmp_path / "repo")], tmp_path / "log", env) as server:
        statuses: Counter[int] = Counter()
        stop = threading.Event()

        def load() -> None:  # more than the model serves: its queue stands
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    reply = client.post(f"{server.url}/predict", json={"x0": 1, "x1": 1})
                    statuses[reply.status_code] += 1

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 30
            answer = b""
            while time.monotonic() < deadline:
                with _connection(server) as sock:  # headers only: the body never comes
                    sock.sendall(_head("Content-Length: 22", "Content-Type: application/json"))
                    answer, _ = _until_closed(sock)
                if _status(answer) == 503:
                    break
                assert _status(answer) == 408  # admitted: it waited for its body in vain
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert _status(answer) == 503
    assert b"retry-after: 1" in answer
    assert b"serving all it can" in answer
    assert set(statuses) <= {200, 503}
    assert statuses[200] > 0
    assert "waited too long" not in server.output()  # refusals are not logged as errors
