"""Issue #3's finish line: one repository holding every runtime, validated and served by one server.

iris (scikit-learn with its ONNX twin served by ``runtime: auto``), iris-xgboost, iris-lightgbm,
digits (TorchScript v1 and ONNX v2) and sentiment (a transformers folder) are trained by the
examples, checked by ``modelport validate`` and answered over HTTP by one ``modelport serve``.
"""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from modelport.cli.convert import convert_to_onnx
from modelport.cli.examples import train_example
from modelport.cli.validate import validate_repository
from tests.helpers import IRIS_ROW, running_server

pytestmark = pytest.mark.e2e

DIGIT = {"image": [[0.0] * 8 for _ in range(8)]}
TEXT = {"text": "這家餐廳很好吃, the staff were lovely"}
#: (model, version) -> the runtime that serves it
SERVED = {
    ("iris", 1): "onnx",
    ("iris-xgboost", 1): "xgboost",
    ("iris-lightgbm", 1): "lightgbm",
    ("digits", 1): "torch",
    ("digits", 2): "onnx",
    ("sentiment", 1): "transformers",
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("zoo") / "models"
    train_example("iris", repo, estimator="forest")
    assert convert_to_onnx(repo, "iris", None, []).passed
    card_path = repo / "iris" / "modelport.yaml"
    card = yaml.safe_load(card_path.read_text())
    card_path.write_text(yaml.safe_dump({**card, "runtime": "auto"}))
    for example, framework in [
        ("iris", "xgboost"),
        ("iris", "lightgbm"),
        ("digits", "torch"),
        ("sentiment", "transformers"),
    ]:
        train_example(example, repo, framework=framework)
    return repo


def test_validate_shows_every_runtime_ready_with_a_sample_answer(zoo: Path) -> None:
    rows = validate_repository(zoo)
    assert {(r.model, r.version): r.runtime for r in rows} == SERVED
    for row in rows:
        assert row.ok, (row.model, row.version, row.error)
        assert row.answer is not None
        assert "prediction" in row.answer


def test_one_server_answers_every_model(zoo: Path, tmp_path: Path) -> None:
    requests = {
        "iris": IRIS_ROW,
        "iris-xgboost": IRIS_ROW,
        "iris-lightgbm": IRIS_ROW,
        "digits": DIGIT,
        "sentiment": TEXT,
    }
    with running_server([str(zoo)], tmp_path / "log") as server:
        for name, body in requests.items():
            response = httpx.post(f"{server.url}/models/{name}/predict", json=body, timeout=30)
            assert response.status_code == 200, (name, response.text)
            assert response.headers["x-model-name"] == name
            assert "prediction" in response.json()
        onnx_digits = httpx.post(f"{server.url}/models/digits/versions/2/predict", json=DIGIT)
        torch_digits = httpx.post(f"{server.url}/models/digits/versions/1/predict", json=DIGIT)
        assert onnx_digits.json()["prediction"] == torch_digits.json()["prediction"]
        for name in requests:
            assert httpx.get(f"{server.url}/v2/models/{name}/ready").status_code == 200
