"""The PyTorch runtime, image inputs (nested lists and base64 PNG/JPEG) on every protocol, the
digits example's TorchScript and ONNX versions, and their failure modes."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from fastapi.testclient import TestClient
from PIL import Image

from modelport.cli.examples import train_example
from modelport.cli.examples.digits import digits_data
from modelport.core.dataplane import DataPlane
from modelport.core.registry import ModelState, Registry
from modelport.core.repository import scan
from modelport.errors import CardError, UntrustedArtifact
from modelport.model.card import read_card
from modelport.model.integrity import pin_artifact
from modelport.model.pins import Pins
from modelport.runtimes import LoadContext
from modelport.runtimes.onnx import OnnxRuntime
from modelport.runtimes.torch import JIT_DEPRECATED, TorchRuntime
from modelport.server.app import create_app
from modelport.settings import Settings
from tests.helpers import copy_repository, running_server
from tests.traffic.test_rollout import ADMIN, KEY


@pytest.fixture(scope="session")
def held_out() -> tuple[np.ndarray, np.ndarray]:
    _, test_x, _, test_y = digits_data()
    return test_x, test_y


@pytest.fixture(scope="module")
def client(digits_repo: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models=digits_repo)), raise_server_exceptions=False) as c:
        yield c


def png(image: np.ndarray, size: int = 8, kind: str = "PNG") -> str:
    """A ``[1, 8, 8]`` tensor in 0..1 as a base64 8-bit grayscale image of ``size`` pixels."""
    pixels = Image.fromarray((image[0] * 255).round().astype(np.uint8), "L")
    if size != 8:
        pixels = pixels.resize((size, size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    pixels.save(buffer, kind)
    return base64.b64encode(buffer.getvalue()).decode()


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def load_torch(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", JIT_DEPRECATED, DeprecationWarning)
        return torch.jit.load(str(path))


def test_example_writes_two_versions_with_an_honest_card(
    digits_repo: Path, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    folder = digits_repo / "digits"
    assert (folder / "1" / "model.pt").is_file()
    assert (folder / "1" / "model.pt.sha256").is_file()
    assert (folder / "2" / "model.onnx").is_file()
    assert not (folder / "2" / "model.onnx.data").exists()  # one self-contained file
    card = read_card(folder / "modelport.yaml")
    assert card.signature is not None
    assert card.signature.output is not None
    assert card.signature.output.class_names == [str(i) for i in range(10)]
    image = card.signature.image()
    assert image is not None
    assert image.shape == (1, 8, 8)
    # the accuracy in the description is the shipped model's, on the held-out images
    test_x, test_y = held_out
    with torch.inference_mode():
        predicted = load_torch(folder / "1" / "model.pt")(torch.from_numpy(test_x)).argmax(1)
    accuracy = float((predicted.numpy() == test_y).mean())
    assert accuracy > 0.9
    assert f"held-out accuracy {accuracy:.3f} on the other {len(test_y)} images" in (
        card.description or ""
    )


def test_training_is_deterministic(digits_repo: Path, tmp_path: Path) -> None:
    train_example("digits", tmp_path)
    again = load_torch(tmp_path / "digits" / "1" / "model.pt").state_dict()
    first = load_torch(digits_repo / "digits" / "1" / "model.pt").state_dict()
    assert again.keys() == first.keys()
    assert all(torch.equal(again[k], first[k]) for k in first)


def test_both_versions_load_with_an_image_signature(client: TestClient) -> None:
    info = client.get("/models/digits").json()
    assert [(v["version"], v["state"], v["runtime"]) for v in info["versions"]] == [
        (1, "ready", "torch"),
        (2, "ready", "onnx"),
    ]
    assert info["signature"]["image"]["shape"] == [1, 8, 8]
    assert info["signature"]["classes"] == list(range(10))
    metadata = client.get("/v2/models/digits").json()
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "image" in schema["DigitsImageRequest"]["properties"]
    assert "top_k" in schema["ImageAnswer"]["properties"]


@pytest.mark.parametrize("version", [1, 2])
def test_nested_lists_and_png_give_the_same_answer(
    client: TestClient, held_out: tuple[np.ndarray, np.ndarray], version: int
) -> None:
    test_x, test_y = held_out
    url = f"/models/digits/versions/{version}/predict"
    tensor = client.post(url, json={"image": test_x[0].tolist()})
    assert tensor.status_code == 200, tensor.text
    answer = tensor.json()
    assert answer["prediction"] == str(test_y[0])
    assert answer["top_k"][0]["label"] == answer["prediction"]
    assert len(answer["top_k"]) == 3  # the card's default
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-3)
    # a PNG of the same digit, 4x larger: decoded, box-resized to 8x8, scaled by 1/255
    for image in (png(test_x[0]), png(test_x[0], size=32), png(test_x[0], kind="JPEG")):
        decoded = client.post(url, json={"image": image, "top_k": 5}).json()
        assert decoded["prediction"] == answer["prediction"]
        assert decoded["probability"] == pytest.approx(answer["probability"], abs=0.02)
        assert len(decoded["top_k"]) == 5
    data_url = "data:image/png;base64," + png(test_x[0])
    assert client.post(url, json={"image": data_url}).json()["prediction"] == str(test_y[0])


def test_batch_answers_match_torch_forward(
    client: TestClient, digits_repo: Path, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    test_x, _ = held_out
    rows = test_x[:20]
    instances = [{"image": x.tolist()} for x in rows]
    instances[3] = {"image": png(rows[3]), "top_k": 1}
    reply = client.post("/models/digits/versions/1/predict/batch", json={"instances": instances})
    assert reply.status_code == 200, reply.text
    answers = reply.json()["predictions"]
    with torch.inference_mode():
        scores = load_torch(digits_repo / "digits" / "1" / "model.pt")(torch.from_numpy(rows))
    expected = softmax(scores.numpy().astype(np.float64))
    for index, (answer, row) in enumerate(zip(answers, expected, strict=True)):
        assert answer["prediction"] == str(int(row.argmax()))
        if index != 3:  # the PNG was quantised to 8 bits
            assert answer["probability"] == pytest.approx(float(row.max()), abs=1e-6)
            top = [(c["label"], c["probability"]) for c in answer["top_k"]]
            order = np.argsort(-row)[:3]
            assert [t[0] for t in top] == [str(i) for i in order]
    assert len(answers[3]["top_k"]) == 1


def test_torchscript_and_onnx_agree(
    digits_repo: Path, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    card = read_card(digits_repo / "digits" / "modelport.yaml")
    test_x, _ = held_out
    outputs = []
    for runtime, artifact in ((TorchRuntime(), "1/model.pt"), (OnnxRuntime(), "2/model.onnx")):
        path = digits_repo / "digits" / artifact
        facts = runtime.load(LoadContext(path, card, False, Pins.default(digits_repo)))
        assert facts.classes == list(range(10))
        outputs.append(runtime.predict(test_x))
    torch_out, onnx_out = outputs
    assert (torch_out.predictions == onnx_out.predictions).all()
    assert torch_out.probabilities is not None
    assert onnx_out.probabilities is not None
    assert np.abs(torch_out.probabilities - onnx_out.probabilities).max() <= 1e-4


def test_kserve_v1_takes_bare_images(
    client: TestClient, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    test_x, test_y = held_out
    body = {"instances": [test_x[0].tolist(), png(test_x[1]), test_x[2][0].tolist()]}
    reply = client.post("/v1/models/digits:predict", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": [str(y) for y in test_y[:3]]}
    bad = client.post("/v1/models/digits:predict", json={"instances": [[1, 2, 3]]})
    assert bad.status_code == 400
    assert "expected a tensor of shape [1, 8, 8], got [3]" in bad.json()["error"]


def test_v2_takes_fp32_tensors_and_encoded_images(
    client: TestClient, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    test_x, test_y = held_out
    tensor = {"name": "image", "shape": [4, 1, 8, 8], "datatype": "FP32"}
    reply = client.post(
        "/v2/models/digits/versions/2/infer",
        json={"inputs": [{**tensor, "data": test_x[:4].ravel().tolist()}]},
    )
    assert reply.status_code == 200, reply.text
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    assert outputs["predict"]["data"] == [str(y) for y in test_y[:4]]
    assert outputs["predict_proba"]["shape"] == [4, 10]
    encoded = {"name": "image", "shape": [2], "datatype": "BYTES"}
    reply = client.post(
        "/v2/models/digits/infer",
        json={"inputs": [{**encoded, "data": [png(test_x[0]), png(test_x[1])]}]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [str(y) for y in test_y[:2]]


def test_v2_binary_png_bytes(client: TestClient, held_out: tuple[np.ndarray, np.ndarray]) -> None:
    test_x, test_y = held_out
    raw = base64.b64decode(png(test_x[5]))
    header = (
        b'{"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", '
        b'"parameters": {"binary_data_size": ' + str(len(raw) + 4).encode() + b"}}]}"
    )
    body = header + len(raw).to_bytes(4, "little") + raw
    reply = client.post(
        "/v2/models/digits/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [str(test_y[5])]


def _gif() -> str:
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "GIF")
    return base64.b64encode(buffer.getvalue()).decode()


BAD_IMAGES = [
    ([[1.0, 2.0], [3.0, 4.0]], "image: expected a tensor of shape [1, 8, 8], got [2, 2]"),
    ([[["1"] * 8] * 8], "image: the tensor must hold numbers, got str"),
    ([[[0.0] * 8] * 7 + [[0.0] * 3]], "image: nested lists of unequal lengths"),
    ([[[True] * 8] * 8], "image: the tensor must hold numbers, got bool"),
    ("not base64!", "image: not valid base64"),
    (base64.b64encode(b"hello, world").decode(), "image: not a PNG or JPEG image"),
    ("GIF", "image: not a PNG or JPEG image"),
    ("TRUNCATED", "image: cannot decode this PNG"),
    (7, "image: expected a base64 PNG/JPEG string or nested lists, got int"),
]


@pytest.mark.parametrize(("image", "message"), BAD_IMAGES)
def test_bad_images_are_precise_422s(
    client: TestClient, held_out: tuple[np.ndarray, np.ndarray], image: Any, message: str
) -> None:
    if image == "GIF":
        image = _gif()
    if image == "TRUNCATED":
        image = png(held_out[0][0])[:60]
    reply = client.post("/models/digits/predict", json={"image": image})
    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert body["code"] == "invalid_input"
    assert message in body["error"]
    batch = client.post("/models/digits/predict/batch", json={"instances": [{"image": image}]})
    assert batch.status_code == 422
    assert batch.json()["detail"][0]["loc"][:4] == ["body", "instances", 0, "image"]


ROW = "[" + ", ".join(["0.5"] * 8) + "]"
INFINITE = '{"image": [[' + ", ".join([ROW] * 7 + [ROW.replace("0.5", "1e400", 1)]) + "]]}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "image: Field required"),
        ('{"image": [[' + ", ".join([ROW] * 8) + ']], "top_k": 0}', "top_k: Input should be"),
        (INFINITE, "image: the tensor holds a value that is not a finite number"),
        ('{"image": null}', "image: expected a base64 PNG/JPEG string or nested lists, got"),
    ],
)
def test_bad_requests_are_422s(client: TestClient, body: str, message: str) -> None:
    reply = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert message in reply.json()["error"]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"shape": [1, 64], "datatype": "FP32", "data": [0] * 64}, "got [1, 64]"),
        ({"shape": [1, 1, 8, 8], "datatype": "INT64", "data": [0] * 64}, "int64 is not a float"),
        ({"shape": [1], "datatype": "BYTES", "data": ["aGVsbG8="]}, "not a PNG or JPEG"),
        ({"shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}, "[batch] BYTES tensor"),
    ],
)
def test_v2_bad_tensors_are_400s(client: TestClient, tensor: dict[str, Any], message: str) -> None:
    reply = client.post("/v2/models/digits/infer", json={"inputs": [{"name": "image", **tensor}]})
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]


def test_a_corrupt_pt_fails_at_load_while_the_rest_serves(
    digits_repo: Path, tmp_path: Path, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    repo = tmp_path / "models"
    copy_repository(digits_repo, repo)
    broken = repo / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.pt").write_bytes(b"PK\x03\x04 this is not a TorchScript archive")
    pickled = repo / "pickled" / "1"
    pickled.mkdir(parents=True)
    torch.save(torch.nn.Linear(64, 10), pickled / "model.pt")  # a pickle, not TorchScript
    unpinned = repo / "unpinned" / "1"
    shutil.copytree(repo / "digits" / "1", unpinned)
    (unpinned / "model.pt.sha256").unlink()
    with (unpinned / "model.pt").open("ab") as changed:  # other bytes: pinned nowhere
        changed.write(b"\0")
    for name in ("broken", "pickled", "unpinned"):
        shutil.copy(repo / "digits" / "modelport.yaml", repo / name / "modelport.yaml")
    pin_artifact(broken / "model.pt", Pins.default(repo))
    pin_artifact(pickled / "model.pt", Pins.default(repo))
    with TestClient(create_app(Settings(models=repo)), raise_server_exceptions=False) as client:
        assert client.get("/ready").status_code == 503
        for name in ("broken", "pickled", "unpinned"):
            error = client.get(f"/models/{name}").json()["versions"][0]["error"]
            if name == "unpinned":  # a TorchScript archive holds pickles: pinned or trusted only
                assert "refusing to load" in error
                assert "no trusted pin vouches for it" in error
            else:
                assert "not a readable TorchScript file" in error
            assert client.post(f"/models/{name}/predict", json={}).status_code == 503
        answer = client.post("/models/digits/predict", json={"image": held_out[0][0].tolist()})
        assert answer.status_code == 200


def test_the_card_must_fit_the_model(digits_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "models"
    copy_repository(digits_repo, repo)
    card_path = repo / "digits" / "modelport.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["signature"]["shape"] = [1, 16, 16]
    card_path.write_text(yaml.safe_dump(card))
    registry = Registry(scan(repo))
    registry.load_all()
    versions = registry.models["digits"].versions
    assert "[2, 1, 16, 16]" in (versions[1].error or "")  # torch: the probe fails
    assert "differs from the model's input ['batch', 1, 8, 8]" in (versions[2].error or "")
    del card["signature"]["input"], card["signature"]["shape"]
    del card["signature"]["top_k"], card["signature"]["preprocessing"]
    card_path.write_text(yaml.safe_dump(card))
    registry = Registry(scan(repo))
    registry.load_all()
    for version in registry.models["digits"].versions.values():
        assert version.state is ModelState.FAILED
        assert "signature: input: image" in (version.error or ""), version.error


def test_card_refuses_image_keys_without_an_image(tmp_path: Path) -> None:
    path = tmp_path / "modelport.yaml"
    path.write_text("signature: {shape: [1, 8, 8]}\n")
    with pytest.raises(CardError, match="shape, top_k and preprocessing are for input: image"):
        read_card(path)
    path.write_text("signature: {input: image, shape: [2, 8, 8]}\n")
    with pytest.raises(CardError, match="1 or 3 channels"):
        read_card(path)
    path.write_text("signature: {input: image, shape: [3, 8, 8], preprocessing: {mean: [0, 0]}}\n")
    with pytest.raises(CardError, match=r"preprocessing\.mean needs 1 or 3 values"):
        read_card(path)


def test_rgb_preprocessing_normalises_per_channel(tmp_path: Path) -> None:
    from modelport.model.images import decode_image
    from modelport.model.imagespec import ImageSpec, Preprocessing

    spec = ImageSpec(
        shape=(3, 2, 2),
        preprocessing=Preprocessing(mean=[0.5, 0.0, 0.0], std=[0.5, 1.0, 2.0], invert=True),
    )
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 51)).save(buffer, "PNG")
    tensor = decode_image(base64.b64encode(buffer.getvalue()).decode(), spec)
    assert tensor.shape == (3, 2, 2)
    assert tensor.dtype == np.float32
    # inverted: (0, 255, 204) / 255 -> (0, 1, 0.8); then (x - mean) / std per channel
    assert np.allclose(tensor[:, 0, 0], [-1.0, 1.0, 0.4])


def test_torch_export_programs_are_served(
    tmp_path: Path, digits_repo: Path, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    test_x, _ = held_out
    from modelport.cli.examples.digits import _network

    scripted = load_torch(digits_repo / "digits" / "1" / "model.pt")
    model = _network(torch)
    model.load_state_dict(scripted.state_dict())
    model.eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        model, (torch.from_numpy(test_x[:2]),), dynamic_shapes=({0: batch},)
    )
    path = tmp_path / "model.pt2"
    torch.export.save(program, str(path))
    card = read_card(digits_repo / "digits" / "modelport.yaml")
    runtime = TorchRuntime()
    with pytest.raises(UntrustedArtifact, match="no trusted pin"):  # torch.export unpickles
        runtime.load(LoadContext(path, card, trusted=False))
    runtime.load(LoadContext(path, card, trusted=True))
    with torch.inference_mode():
        expected = softmax(scripted(torch.from_numpy(test_x[:10])).numpy().astype(np.float64))
    probabilities = runtime.predict(test_x[:10]).probabilities
    assert probabilities is not None
    assert np.abs(probabilities - expected).max() <= 1e-5


def test_missing_torch_gives_a_one_line_hint(digits_repo: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from pathlib import Path\n"
        "from modelport.core.registry import Registry\n"
        "from modelport.core.repository import scan\n"
        f"registry = Registry(scan(Path({str(digits_repo)!r})))\n"
        "registry.load_all()\n"
        "print(registry.models['digits'].versions[1].error)\n"
        "print(registry.models['digits'].versions[2].state.value)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    error, onnx_state = result.stdout.splitlines()
    assert error == "runtime 'torch' needs torch: pip install 'modelport[torch]'"
    assert onnx_state == "ready"  # the ONNX version needs no torch


def test_concurrent_images_are_batched(
    digits_repo: Path, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    test_x, test_y = held_out
    registry = Registry(scan(digits_repo))
    registry.load_all()
    plane = DataPlane(registry)
    model = plane.version("digits", 1)
    sizes: list[int] = []
    predict = model.runtime.predict

    def spy(rows: np.ndarray) -> Any:
        sizes.append(len(rows))
        return predict(rows)

    model.runtime.predict = spy  # type: ignore[method-assign]

    async def main() -> list[Any]:
        records = [{"image": png(x)} for x in test_x[:16]]
        batches = [plane.records_to_rows(model, [r]) for r in records]
        try:
            return await asyncio.gather(*(plane.infer(model, b) for b in batches))
        finally:
            await plane.close()

    results = asyncio.run(main())
    assert [r.labels()[0] for r in results] == [str(y) for y in test_y[:16]]
    assert sum(sizes) == 16
    assert max(sizes) > 1  # one model call served several requests


@pytest.mark.e2e
def test_real_server_with_tritonclient_and_httpx(
    digits_repo: Path, tmp_path: Path, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    import httpx2 as httpx
    import tritonclient.http as triton

    test_x, test_y = held_out
    with running_server([str(digits_repo)], tmp_path / "server.log") as server:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            for version in ("1", "2"):
                tensor = triton.InferInput("image", [8, 1, 8, 8], "FP32")
                tensor.set_data_from_numpy(test_x[:8], binary_data=True)
                result = client.infer("digits", [tensor], model_version=version)
                labels = [x.decode() for x in result.as_numpy("predict").tolist()]
                assert labels == [str(y) for y in test_y[:8]]
            encoded = triton.InferInput("image", [2], "BYTES")
            raw = [base64.b64decode(png(x)) for x in test_x[:2]]
            encoded.set_data_from_numpy(np.array(raw, dtype=object), binary_data=True)
            result = client.infer("digits", [encoded])
            assert [x.decode() for x in result.as_numpy("predict").tolist()] == [
                str(y) for y in test_y[:2]
            ]
        finally:
            client.close()
        reply = httpx.post(
            f"{server.url}/predict", json={"image": png(test_x[9], size=40)}, timeout=30
        )
        assert reply.status_code == 200
        assert reply.json()["prediction"] == str(test_y[9])
        bad = httpx.post(f"{server.url}/predict", json={"image": "aGVsbG8="}, timeout=30)
        assert bad.status_code == 422
        assert httpx.get(f"{server.url}/ready", timeout=30).status_code == 200


def test_import_pins_a_torchscript_file_under_an_existing_card(
    digits_repo: Path, tmp_path: Path
) -> None:
    from modelport.cli.importer import import_model

    outside = tmp_path / "cnn.pt"
    shutil.copy(digits_repo / "digits" / "1" / "model.pt", outside)  # no sidecar out here
    repo = tmp_path / "models"
    (repo / "cnn").mkdir(parents=True)
    shutil.copy(digits_repo / "digits" / "modelport.yaml", repo / "cnn" / "modelport.yaml")
    artifact = import_model(outside, repo, "cnn")
    assert artifact.with_name("model.pt.sha256").is_file()
    registry = Registry(scan(repo))
    registry.load_all()
    assert registry.models["cnn"].versions[1].state is ModelState.READY


def test_a_rollout_warms_image_versions(digits_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "models"
    copy_repository(digits_repo, repo)
    app = create_app(Settings(models=repo, admin_key=KEY))  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as admin:
        for version in (2, 1):  # the ONNX export, then TorchScript: each warmed with an image
            answer = admin.post(f"/admin/models/digits/rollout/{version}", headers=ADMIN)
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == version
