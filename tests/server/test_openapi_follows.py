"""Swagger follows the registry: ``/openapi.json`` after a card edit and a reload, a rollout and
an unload shows what is served now, and is cached between changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from modelport.cli.examples import train_example
from modelport.model.card import CARD_FILE, read_card, write_card
from tests.conftest import ClientFactory
from tests.helpers import write_fake_model

KEY = "s3cret-admin"
ADMIN = {"Authorization": f"Bearer {KEY}"}


def request_schema(client: TestClient, path: str) -> dict[str, Any]:
    doc = client.get("/openapi.json").json()
    body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema: dict[str, Any] = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    return schema


def test_a_card_edit_and_a_reload_show_in_openapi(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    train_example("iris", tmp_path)
    with make_client(tmp_path, admin_key=KEY) as client:
        before = request_schema(client, "/models/iris/predict")["properties"]["sepal_length"]
        assert before["maximum"] == 10
        assert client.app.openapi() is client.app.openapi()  # type: ignore[attr-defined]
        card_file = tmp_path / "iris" / CARD_FILE
        card = read_card(card_file)
        assert card.signature is not None
        assert card.signature.inputs is not None
        first, *rest = card.signature.inputs
        inputs = [first.model_copy(update={"le": 8.0, "example": 6.0}), *rest]
        signature = card.signature.model_copy(update={"inputs": inputs})
        write_card(card_file, card.model_copy(update={"signature": signature}))
        assert client.post("/v2/repository/models/iris/load", headers=ADMIN).status_code == 200
        schema = request_schema(client, "/models/iris/predict")
        assert schema["properties"]["sepal_length"]["maximum"] == 8
        assert schema["examples"][0]["sepal_length"] == 6.0
        assert request_schema(client, "/predict")["properties"]["sepal_length"]["maximum"] == 8


def test_a_rollout_and_an_unload_show_in_openapi(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1, 2))
    for version, width in ((1, 2), (2, 3)):
        (folder / str(version) / "model.fake").write_text(yaml.safe_dump({"n_features": width}))
    write_fake_model(tmp_path, "other")
    with make_client(tmp_path, admin_key=KEY) as client:
        assert list(request_schema(client, "/models/m/predict")["properties"]) == ["x0", "x1", "x2"]
        answer = client.post("/admin/models/m/rollout/1", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert list(request_schema(client, "/models/m/predict")["properties"]) == ["x0", "x1"]
        assert client.post("/v2/repository/models/other/unload", headers=ADMIN).status_code == 200
        assert "/models/other/predict" not in client.get("/openapi.json").json()["paths"]
