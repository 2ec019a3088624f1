"""A flood of feedback for unknown request ids never starves predictions (issue 13).

The server runs in this process (uvicorn on loopback, in a thread), so the test can see what the
flood holds: its places in the feedback bound, and no thread of the pool predictions use.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio.to_thread
import httpx2 as httpx
import pytest
import uvicorn
from fastapi import FastAPI

from modelport.outcomes import feedback
from modelport.outcomes.service import MAX_FEEDBACK, Outcomes
from modelport.server.app import create_app
from modelport.settings import Settings
from tests.helpers import free_port, write_fake_model

PARAMETERS = {"classes": ["no", "yes"], "n_features": 1}


@contextlib.contextmanager
def _serving(app: FastAPI) -> Iterator[tuple[str, asyncio.AbstractEventLoop]]:
    """Serve ``app`` on loopback from a thread; its URL and event loop."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),))
    thread.start()
    try:
        _until(lambda: server.started, "the server never started")
        yield f"http://127.0.0.1:{port}", loop
    finally:
        server.should_exit = True
        thread.join(30)
        loop.close()


def _until(condition: object, message: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, message
        time.sleep(0.01)


async def _prediction_threads_in_use() -> int:
    return int(anyio.to_thread.current_default_thread_limiter().borrowed_tokens)


def _post(
    client: httpx.Client, path: str, body: dict[str, object], request_id: str | None = None
) -> httpx.Response:
    headers = {"X-Request-Id": request_id} if request_id else {}
    return client.post(path, json=body, headers=headers)


def test_a_feedback_flood_holds_no_prediction_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the flood's ids are unknown until the end: each feedback waits for them meanwhile
    monkeypatch.setattr(feedback, "OTHER_WRITERS_S", 120.0)
    write_fake_model(tmp_path / "repo", "iris", parameters=PARAMETERS)
    # no rollout-state watcher: nothing else borrows a thread of the prediction pool meanwhile
    app = create_app(Settings(models=tmp_path / "repo", watch_interval=0))
    outcomes: Outcomes = app.state.outcomes
    limits = httpx.Limits(max_connections=MAX_FEEDBACK + 61)
    with (
        _serving(app) as (url, loop),
        httpx.Client(base_url=url, timeout=60, limits=limits) as client,
        ThreadPoolExecutor(MAX_FEEDBACK + 60) as pool,
    ):
        flood = [
            pool.submit(_post, client, "/feedback", {"request_id": f"late-{i}", "label": "yes"})
            for i in range(MAX_FEEDBACK)
        ]
        _until(lambda: outcomes.feedback_in_progress == MAX_FEEDBACK, "the flood never arrived")
        in_use = asyncio.run_coroutine_threadsafe(_prediction_threads_in_use(), loop).result(10)
        assert in_use == 0  # the waiting feedback holds no thread of the prediction pool
        refused = _post(client, "/feedback", {"request_id": "one-more", "label": "yes"})
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
        # more predictions at once than that pool has threads: every one is answered
        answers = list(pool.map(lambda _: _post(client, "/predict", {"x0": 1}), range(60)))
        assert [a.status_code for a in answers] == [200] * 60
        assert outcomes.feedback_in_progress == MAX_FEEDBACK  # all while the flood waited
        # the ids appear: every waiting feedback finds its prediction
        for i in range(MAX_FEEDBACK):
            assert _post(client, "/predict", {"x0": 1}, f"late-{i}").status_code == 200
        assert [f.result().json().get("recorded") for f in flood] == ["new"] * MAX_FEEDBACK
