"""One behaviour, three protocols: the same model and inputs give the same predictions through
the tutorial's /predict, KServe V1 and the Open Inference Protocol (V2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

Records = list[dict[str, Any]]
Answers = list[tuple[Any, list[float] | None]]


def tutorial(client: TestClient, model: str, records: Records) -> Answers:
    out = []
    for record in records:
        body = client.post(f"/models/{model}/predict", json=record).json()
        out.append((body["prediction"], body.get("probabilities")))
    return out


def kserve_v1(client: TestClient, model: str, records: Records) -> Answers:
    body = client.post(f"/v1/models/{model}:predict", json={"instances": records}).json()
    return [(p, None) for p in body["predictions"]]


def open_inference(client: TestClient, model: str, records: Records) -> Answers:
    meta = client.get(f"/v2/models/{model}").json()
    names = list(records[0])
    if meta["inputs"][0]["name"] == "input":
        inputs = [
            {
                "name": "input",
                "shape": [len(records), len(names)],
                "datatype": "FP64",
                "data": [[r[n] for n in names] for r in records],
            }
        ]
    else:
        types = {i["name"]: i["datatype"] for i in meta["inputs"]}
        inputs = [
            {
                "name": n,
                "shape": [len(records)],
                "datatype": types[n],
                "data": [r[n] for r in records],
            }
            for n in names
        ]
    body = client.post(f"/v2/models/{model}/infer", json={"inputs": inputs}).json()
    outputs = {o["name"]: o for o in body["outputs"]}
    labels = outputs["predict"]["data"]
    proba = outputs.get("predict_proba")
    if proba is None:
        return [(label, None) for label in labels]
    k = proba["shape"][1]
    rows = [proba["data"][i * k : (i + 1) * k] for i in range(len(labels))]
    return [(label, [round(p, 4) for p in row]) for label, row in zip(labels, rows, strict=True)]


PROTOCOLS: dict[str, Callable[[TestClient, str, Records], Answers]] = {
    "tutorial": tutorial,
    "kserve-v1": kserve_v1,
    "open-inference-v2": open_inference,
}


def records_for(client: TestClient, model: str) -> Records:
    signature = client.get(f"/models/{model}").json()["signature"]
    if model == "sentiment":
        return [{"text": t} for t in ("Loved every minute.", "服務很差", "meh", "非常推薦")]
    example = {f["name"]: f["example"] for f in signature["inputs"]}
    scaled = [{k: round(v * s, 3) for k, v in example.items()} for s in (0.5, 0.8, 1.0, 1.3)]
    if model == "iris":
        scaled.append(
            {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
        )
    return scaled


@pytest.mark.parametrize("model", ["iris", "wine", "sentiment"])
@pytest.mark.parametrize("protocol", [p for p in PROTOCOLS if p != "tutorial"])
def test_protocols_agree(client: TestClient, model: str, protocol: str) -> None:
    records = records_for(client, model)
    reference = tutorial(client, model, records)
    answers = PROTOCOLS[protocol](client, model, records)
    assert [a[0] for a in answers] == [r[0] for r in reference]
    for (_, probs), (_, expected) in zip(answers, reference, strict=True):
        if probs is not None:
            assert probs == expected
    assert len({r[0] for r in reference}) > 1  # the inputs are not all alike
