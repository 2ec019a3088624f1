"""A transformers model behind real servers: gunicorn workers forked after the master loaded the
model (torch must keep working in the children), and tritonclient's binary BYTES tensors."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
import tritonclient.http as triton

from modelport.cli.examples import train_example
from tests.helpers import running_server

pytestmark = pytest.mark.e2e

TEXTS = ["Great value for money.", "老闆人很好", "The room was dirty.", "冷氣聲音很大"]


@pytest.fixture(scope="module")
def text_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("hf-e2e") / "models"
    train_example("sentiment", repo, framework="transformers", name="bert")
    return repo


def test_gunicorn_workers_serve_a_model_loaded_before_the_fork(
    text_repo: Path, tmp_path: Path
) -> None:
    with running_server([str(text_repo), "--workers", "2"], tmp_path / "log") as server:

        def ask(text: str) -> httpx.Response:
            url = f"{server.url}/models/bert/predict"
            return httpx.post(url, json={"text": text}, timeout=60)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, TEXTS * 6))
        code = server.stop()
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert {a.json()["prediction"] for a in answers} <= {"positive", "negative"}
    assert code == 0
    assert server.output().count("loaded bert v1") == 1


def test_tritonclient_sends_binary_bytes(text_repo: Path, tmp_path: Path) -> None:
    with running_server([str(text_repo)], tmp_path / "log") as server:
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        tensor = triton.InferInput("text", [len(TEXTS)], "BYTES")
        tensor.set_data_from_numpy(np.asarray([t.encode() for t in TEXTS], dtype=object))
        wanted = [triton.InferRequestedOutput("predict_proba", binary_data=True)]
        result = client.infer("bert", [tensor], outputs=wanted)
        proba = result.as_numpy("predict_proba")
        single = httpx.post(f"{server.url}/models/bert/predict", json={"text": TEXTS[1]}).json()
    assert proba.shape == (len(TEXTS), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba[1], single["probabilities"], atol=1e-4)
