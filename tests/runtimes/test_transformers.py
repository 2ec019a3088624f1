"""The transformers runtime: a tiny BERT text classifier trained from scratch (English and
Chinese), over every protocol, with parity against transformers' own pipeline."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import transformers
import yaml
from fastapi.testclient import TestClient

from modelport.cli.examples import train_example
from modelport.errors import MissingExtra, ModelLoadError, UntrustedArtifact
from modelport.model.card import ModelCard
from modelport.model.manifest import MANIFEST, verify_manifest
from modelport.model.pins import Pins
from modelport.runtimes import LoadContext, get_runtime
from modelport.runtimes.transformers import TransformersRuntime
from tests.conftest import _client
from tests.helpers import IRIS_ROW

TEXTS = [
    "The staff were friendly and the room was spotless.",
    "The package arrived crushed and the mug inside was shattered.",
    "老闆人很好，還送我們一盤小菜。",  # noqa: RUF001
    "冷氣聲音很大，吵得我們睡不著。",  # noqa: RUF001
]
LABELS = {"negative", "positive"}


def _edit_card(model: Path, **changes: object) -> None:
    card = model / "modelport.yaml"
    data = yaml.safe_load(card.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    card.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="session")
def bert_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris, the tiny BERT, and variants of it: strict about length, corrupt, without weights."""
    repo = tmp_path_factory.mktemp("hf") / "models"
    train_example("iris", repo)
    train_example("sentiment", repo, framework="transformers", name="bert")
    strict = repo / "bert-strict"
    shutil.copytree(repo / "bert", strict)
    _edit_card(strict, parameters={"truncation": False, "max_length": 12})
    corrupt = repo / "bert-corrupt"
    shutil.copytree(repo / "bert", corrupt)
    weights = corrupt / "1" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64] + bytes(64))
    broken = repo / "bert-broken"
    shutil.copytree(repo / "bert", broken)
    (broken / "1" / MANIFEST).unlink()
    (broken / "1" / "model.safetensors").write_bytes(b"not a safetensors file")
    return repo


@pytest.fixture(scope="module")
def bert(bert_repo: Path) -> Iterator[TestClient]:
    with _client(bert_repo) as client:
        yield client


@pytest.fixture(scope="session")
def pipe(bert_repo: Path) -> object:
    folder = str(bert_repo / "bert" / "1")
    return transformers.pipeline("text-classification", model=folder, top_k=None, device="cpu")


def _scores(pipe: object, texts: list[str]) -> list[dict[str, float]]:
    results = pipe(texts)  # type: ignore[operator]
    return [{r["label"]: r["score"] for r in result} for result in results]


def test_the_example_writes_a_pinned_safetensors_folder(bert_repo: Path) -> None:
    version = bert_repo / "bert" / "1"
    names = {p.name for p in version.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", MANIFEST} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    assert verify_manifest(version)
    card = yaml.safe_load((bert_repo / "bert" / "modelport.yaml").read_text(encoding="utf-8"))
    assert card["runtime"] == "transformers"
    assert "held-out" in card["description"]
    assert "Accuracy 0." in card["description"] or "Accuracy 1.00" in card["description"]


def test_signature_comes_from_the_model(bert: TestClient) -> None:
    meta = bert.get("/v2/models/bert").json()
    assert meta["inputs"][0]["name"] == "text"
    assert meta["inputs"][0]["datatype"] == "BYTES"
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    schema = bert.get("/openapi.json").json()
    assert "text" in str(schema)


def test_predict_one_text_matches_the_pipeline(bert: TestClient, pipe: object) -> None:
    expected = _scores(pipe, TEXTS[:1])[0]
    answer = bert.post("/models/bert/predict", json={"text": TEXTS[0]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["prediction"] == max(expected, key=expected.__getitem__)
    assert body["probability"] == pytest.approx(max(expected.values()), abs=1e-5)
    assert body["probabilities"] == pytest.approx(
        [expected["negative"], expected["positive"]], abs=1e-4
    )


def test_batch_and_chinese_match_the_pipeline(bert: TestClient, pipe: object) -> None:
    expected = _scores(pipe, TEXTS)
    answer = bert.post(
        "/models/bert/predict/batch", json={"instances": [{"text": t} for t in TEXTS]}
    )
    assert answer.status_code == 200, answer.text
    for row, scores in zip(answer.json()["predictions"], expected, strict=True):
        assert row["probabilities"] == pytest.approx(
            [scores["negative"], scores["positive"]], abs=1e-4
        )


def test_chinese_is_split_into_known_characters(bert_repo: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(bert_repo / "bert" / "1"))
    tokens = tokenizer.tokenize(TEXTS[2])
    assert tokens[:3] == ["老", "闆", "人"]
    assert tokenizer.unk_token not in tokens


def test_the_model_learned_something(bert: TestClient) -> None:
    """The training sentences themselves come back right (a model that learned nothing fails)."""
    from modelport.cli.examples.tabular import sentiment_data

    texts, labels = sentiment_data()
    answer = bert.post("/v1/models/bert:predict", json={"instances": texts[:80]})
    hits = np.mean([p == y for p, y in zip(answer.json()["predictions"], labels, strict=False)])
    assert hits >= 0.8


def test_v1_takes_bare_strings(bert: TestClient) -> None:
    answer = bert.post("/v1/models/bert:predict", json={"instances": TEXTS})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 4
    assert set(answer.json()["predictions"]) <= LABELS


def test_v2_takes_bytes(bert: TestClient, pipe: object) -> None:
    body = {"inputs": [{"name": "text", "shape": [4], "datatype": "BYTES", "data": TEXTS}]}
    answer = bert.post("/v2/models/bert/infer", json=body)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["predict"]["datatype"] == "BYTES"
    assert outputs["predict_proba"]["shape"] == [4, 2]
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(4, 2)
    expected = [[s["negative"], s["positive"]] for s in _scores(pipe, TEXTS)]
    np.testing.assert_allclose(proba, expected, atol=1e-4)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": 3}, "text"),
        ({"text": ["a", "b"]}, "text"),
        ({}, "text"),
        ({"text": ""}, "non-empty text"),
        ({"text": "   "}, "non-empty text"),
    ],
)
def test_bad_text_is_a_precise_422(bert: TestClient, body: dict, message: str) -> None:
    answer = bert.post("/models/bert/predict", json=body)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"] or message in str(answer.json())


def test_v2_empty_text_in_a_batch_names_its_row(bert: TestClient) -> None:
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["ok", ""]}]}
    answer = bert.post("/v2/models/bert/infer", json=body)
    assert answer.status_code == 400  # the Open Inference Protocol's status for bad input
    assert "text (row 1): Input should be non-empty text" in answer.json()["error"]


def test_over_long_text_is_truncated_as_the_card_says(bert: TestClient) -> None:
    long = " ".join([TEXTS[0]] * 200)
    answer = bert.post("/models/bert/predict", json={"text": long})
    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction"] in LABELS


def test_over_long_text_is_refused_when_the_card_turns_truncation_off(bert: TestClient) -> None:
    assert bert.post("/models/bert-strict/predict", json={"text": "great"}).status_code == 200
    answer = bert.post("/models/bert-strict/predict", json={"text": TEXTS[0] * 3})
    assert answer.status_code == 422
    assert "32 tokens is more than this model's max_length of 12" in answer.text


def test_a_corrupt_folder_fails_to_load_and_the_rest_serve(bert: TestClient) -> None:
    assert bert.get("/v2/models/bert-corrupt/ready").status_code == 503
    assert bert.get("/v2/models/bert-broken/ready").status_code == 503
    assert bert.post("/models/bert-corrupt/predict", json={"text": "hi"}).status_code == 503
    assert bert.post("/models/iris/predict", json=IRIS_ROW).status_code == 200
    assert bert.post("/models/bert/predict", json={"text": "hi"}).status_code == 200


def _load(
    folder: Path, trusted: bool = False, pins: Pins | None = None, **parameters: object
) -> TransformersRuntime:
    runtime = TransformersRuntime()
    card = ModelCard(runtime="transformers", parameters=parameters)
    runtime.load(LoadContext(folder / "model.safetensors", card, trusted, pins))
    return runtime


def test_load_errors_say_what_is_wrong(bert_repo: Path) -> None:
    pins = Pins.default(bert_repo)
    with pytest.raises(UntrustedArtifact, match=r"model.safetensors has sha256"):
        _load(bert_repo / "bert-corrupt" / "1", pins=pins)
    with pytest.raises(ModelLoadError, match="transformers cannot load it"):
        _load(bert_repo / "bert-broken" / "1", trusted=True)
    with pytest.raises(ModelLoadError, match="truncation"):
        _load(bert_repo / "bert" / "1", pins=pins, truncation="sometimes")


def test_a_file_added_to_a_pinned_folder_is_refused(bert_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "v"
    shutil.copytree(bert_repo / "bert" / "1", folder)
    pins = Pins.default(bert_repo)
    _load(folder, pins=pins)  # a copy of a pinned folder is pinned: its tree digest is
    (folder / "pytorch_model.bin").write_bytes(b"a pickle")
    with pytest.raises(UntrustedArtifact, match=r"pytorch_model.bin is not in MANIFEST"):
        _load(folder, pins=pins)
    (folder / "pytorch_model.bin").unlink()
    (folder / "tokenizer.json").unlink()
    with pytest.raises(UntrustedArtifact, match=r"tokenizer\.json, pinned in"):
        _load(folder, pins=pins)


def test_an_edited_pinned_folder_is_refused_even_with_its_manifest_rewritten(
    bert_repo: Path, tmp_path: Path
) -> None:
    """Whoever can write the folder can rewrite MANIFEST.sha256 too: the lock still refuses."""
    repo = tmp_path / "models"
    shutil.copytree(bert_repo / "bert", repo / "bert")
    pins = Pins.default(repo)
    shutil.copy(Pins.default(bert_repo).lock, pins.lock)
    folder = repo / "bert" / "1"
    config = folder / "config.json"
    config.write_text(config.read_text() + "\n")
    (folder / MANIFEST).unlink()
    with pytest.raises(UntrustedArtifact, match="changed since it was pinned") as info:
        _load(folder, pins=pins)
    assert f"modelport pin {repo} --force" in info.value.message
    from modelport.model.manifest import write_manifest

    write_manifest(folder)  # a matching manifest is integrity, not trust
    with pytest.raises(UntrustedArtifact, match="changed since it was pinned"):
        _load(folder, pins=pins)
    _load(folder, trusted=True)  # --trust: served as it is


def test_an_unpinned_folder_is_refused_and_trusted_loads_safetensors_only(
    bert_repo: Path, tmp_path: Path
) -> None:
    """A folder written by save_pretrained without a pin is refused; trusted, it serves, and a
    pickle beside it is never read (use_safetensors)."""
    folder = tmp_path / "v"
    shutil.copytree(bert_repo / "bert" / "1", folder)
    (folder / MANIFEST).unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(UntrustedArtifact, match="no trusted pin vouches for it"):
        _load(folder, pins=Pins.default(bert_repo))
    runtime = _load(folder, trusted=True)
    rows = np.asarray([[TEXTS[0]]], dtype=object)
    assert runtime.predict(rows).predictions[0] in LABELS
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError):
        _load(folder, trusted=True)


def test_a_missing_extra_is_a_one_line_hint(
    monkeypatch: pytest.MonkeyPatch, bert_repo: Path
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    runtime = get_runtime("transformers")()
    card = ModelCard(runtime="transformers")
    artifact = bert_repo / "bert" / "1" / "model.safetensors"
    with pytest.raises(MissingExtra, match=r"pip install 'modelport\[transformers\]'") as info:
        runtime.load(LoadContext(artifact, card, False, Pins.default(bert_repo)))
    assert "\n" not in info.value.message
    with pytest.raises(MissingExtra, match=r"modelport\[transformers\]"):
        train_example("sentiment", bert_repo.parent / "other", framework="transformers")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_empty_text_fails_alone_when_requests_share_a_batch(
    bert_repo: Path, tmp_path: Path
) -> None:
    """The runtime's check runs per request, before rows join a batch: one empty text is a 422
    for its sender only, while the requests around it ride one batch together."""
    import asyncio

    from modelport.core.dataplane import DataPlane
    from modelport.core.registry import Registry
    from modelport.core.repository import scan
    from modelport.errors import InvalidInput

    model_dir = tmp_path / "bert"
    shutil.copytree(bert_repo / "bert", model_dir)
    _edit_card(model_dir, batching={"max_latency_ms": 200})
    registry = Registry(scan(model_dir), pins=Pins.default(bert_repo))
    registry.load_all()
    plane = DataPlane(registry, request_timeout=60)
    model = plane.version("bert")
    texts = [TEXTS[0], TEXTS[1], "", TEXTS[2], TEXTS[3]]
    rows = [np.asarray([[t]], dtype=object) for t in texts]
    outcomes = await asyncio.gather(*(plane.infer(model, r) for r in rows), return_exceptions=True)
    assert isinstance(outcomes[2], InvalidInput)
    good = [o for i, o in enumerate(outcomes) if i != 2]
    assert all(not isinstance(o, BaseException) for o in good), good
    assert model.batcher is not None
    assert model.batcher.batches < 4
    await plane.close()


def test_the_cli_gives_a_one_line_hint_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.cli.test_cli import run

    monkeypatch.setitem(sys.modules, "torch", None)
    repo = str(tmp_path / "models")
    code, _, err = run(
        capsys, "examples", "train", "sentiment", "--framework", "transformers", "--repo", repo
    )
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "pip install 'modelport[transformers]'" in err
    assert "Traceback" not in err


def test_validate_shows_the_text_model_ready(
    capsys: pytest.CaptureFixture[str], bert_repo: Path, tmp_path: Path
) -> None:
    from tests.cli.test_cli import run

    repo = tmp_path / "models"
    shutil.copytree(bert_repo / "bert", repo / "bert")
    shutil.copy(Pins.default(bert_repo).lock, Pins.default(repo).lock)  # the pins travel too
    code, out, _ = run(capsys, "validate", str(repo))
    assert code == 0, out
    assert "bert" in out
    assert "positive" in out or "negative" in out


def test_a_folder_with_only_pickled_weights_says_how_to_fix_it(
    bert_repo: Path, tmp_path: Path
) -> None:
    from modelport.core.repository import scan

    model = tmp_path / "old"
    shutil.copytree(bert_repo / "bert", model)
    (model / "1" / "model.safetensors").rename(model / "1" / "pytorch_model.bin")
    (source,) = scan(model)
    assert "safe_serialization=True" in source.problems[1]


def test_trust_skips_the_manifest(bert_repo: Path) -> None:
    runtime = _load(bert_repo / "bert-corrupt" / "1", trusted=True)
    assert runtime.predict(np.asarray([[TEXTS[0]]], dtype=object)).predictions[0] in LABELS


def test_threads_from_the_card_set_torchs_threads(bert_repo: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _load(bert_repo / "bert" / "1", trusted=True, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
