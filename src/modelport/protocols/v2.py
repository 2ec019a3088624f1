"""Open Inference Protocol (KServe V2, Triton, MLServer) over REST: health, server and model
metadata, readiness and inference, with the binary tensor extension.

A tabular model takes one tensor ``[batch, n_features]`` (MLServer's habit) or one tensor per
feature named after it (Triton's); a one-feature model (text) takes ``[batch]``. Outputs are
``predict`` (labels or values) and ``predict_proba``. Bad input answers 400, an unknown model
404, a model not loaded 503, each with ``{"error": ...}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from modelport._version import __version__
from modelport.core.dataplane import DataPlane
from modelport.core.registry import LoadedModel
from modelport.core.result import InferenceResult
from modelport.core.validation import ascii_int, bounded
from modelport.errors import BadRequest, InvalidInput
from modelport.model.images import tensor_rows
from modelport.protocols._http import (
    Call,
    Reply,
    check_instances,
    json_response,
    parse_version,
    plane_of,
    serve,
)
from modelport.protocols.v2_codec import (
    InferenceRequest,
    RequestInput,
    RequestOutput,
    decode_input,
    encode_output,
)

if TYPE_CHECKING:
    from modelport.settings import Settings

__all__ = ["EXTENSIONS", "infer", "model_is_ready", "model_metadata", "router", "rows_of"]

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"])
HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data", "model_repository"]


@router.get("/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    ok = plane_of(request).ready()
    return json_response({"ready": ok}, status_code=200 if ok else 503)


@router.get("")
async def server_metadata() -> dict[str, Any]:
    return {"name": "modelport", "version": __version__, "extensions": EXTENSIONS}


def _input_metadata(model: LoadedModel) -> list[dict[str, Any]]:
    fields, image = model.signature.inputs, model.signature.image
    if image is not None:
        return [{"name": "image", "datatype": "FP32", "shape": [-1, *image.shape]}]
    if len(fields) > 1 and all(f.type != "str" for f in fields):
        return [{"name": "input", "datatype": "FP64", "shape": [-1, len(fields)]}]
    types = {"str": "BYTES", "float": "FP64", "int": "INT64", "bool": "BOOL"}
    return [{"name": f.name, "datatype": types[f.type], "shape": [-1]} for f in fields]


def _output_metadata(model: LoadedModel) -> list[dict[str, Any]]:
    signature = model.signature
    if signature.output.kind == "regression":
        label = "FP64"
    elif signature.output.class_names or any(isinstance(c, str) for c in signature.classes or []):
        label = "BYTES"
    else:
        label = "INT64"
    outputs = [{"name": "predict", "datatype": label, "shape": [-1]}]
    if signature.output.width is not None:  # vectors (embeddings) come back as float32
        outputs = [{"name": "predict", "datatype": "FP32", "shape": [-1, signature.output.width]}]
    if signature.output.probabilities and signature.classes is not None:
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(signature.classes)]}
        )
    return outputs


def model_metadata(plane: DataPlane, model: LoadedModel) -> dict[str, Any]:
    versions = plane.registry.model(model.name).versions
    return {
        "name": model.name,
        "versions": [str(v) for v in sorted(versions)],
        "platform": model.runtime_name,
        "inputs": _input_metadata(model),
        "outputs": _output_metadata(model),
    }


@router.get("/models/{name}")
async def metadata(request: Request, name: str) -> dict[str, Any]:
    plane = plane_of(request)
    return model_metadata(plane, plane.version(name))


@router.get("/models/{name}/versions/{version}")
async def version_metadata(request: Request, name: str, version: str) -> dict[str, Any]:
    plane = plane_of(request)
    return model_metadata(plane, plane.version(name, parse_version(version)))


def model_is_ready(plane: DataPlane, name: str, version: int | None) -> bool:
    """Whether the model's version (default: its default version) is loaded (404 unknown)."""
    model = plane.registry.model(name)
    number = model.default_version if version is None else version
    if number not in model.versions:
        plane.version(name, number)  # raises the 404 with the known versions
    return model.versions[number].loaded is not None


def _readiness(plane: DataPlane, name: str, version: int | None) -> Response:
    ok = model_is_ready(plane, name, version)
    return json_response({"name": name, "ready": ok}, status_code=200 if ok else 503)


@router.get("/models/{name}/ready")
async def model_ready(request: Request, name: str) -> Response:
    return _readiness(plane_of(request), name, None)


@router.get("/models/{name}/versions/{version}/ready")
async def version_ready(request: Request, name: str, version: str) -> Response:
    return _readiness(plane_of(request), name, parse_version(version))


def _header_length(headers: list[tuple[bytes, bytes]], size: int) -> int | None:
    """``Inference-Header-Content-Length``, checked against a ``size``-byte body."""
    wanted = HEADER_LENGTH.lower().encode()
    for key, value in headers:
        if key == wanted:
            length = ascii_int(value, 12)
            if length is None or length > size:
                shown = bounded(value.decode("utf-8", "replace"), 20)
                raise BadRequest(f"{HEADER_LENGTH} {shown!r} does not fit a {size}-byte body")
            return length
    return None


def _parse(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[InferenceRequest, dict[str, bytes]]:
    """The JSON header and each input's binary data (binary tensor extension)."""
    length = _header_length(headers, len(body))
    header, rest = body, b""
    if length is not None:
        header, rest = body[:length], body[length:]
    try:
        parsed = InferenceRequest.model_validate(orjson.loads(header))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"invalid inference request: {where}: {first['msg']}") from exc
    binaries: dict[str, bytes] = {}
    offset = 0
    for tensor in parsed.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(rest):
            raise BadRequest(f"input {tensor.name!r}: binary_data_size {size!r} exceeds the body")
        binaries[tensor.name] = rest[offset : offset + size]
        offset += size
    if offset != len(rest):
        raise BadRequest(f"{len(rest) - offset} bytes of binary data belong to no input")
    return parsed, binaries


def _column(tensor: RequestInput, array: np.ndarray) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise BadRequest(f"input {tensor.name!r}: a per-feature tensor has shape [batch]")
    return array


def rows_of(
    model: LoadedModel, parsed: InferenceRequest, binaries: dict[str, bytes], settings: Settings
) -> np.ndarray:
    """The request's tensors as the model's input rows (``binaries``: raw data by input name)."""
    names = model.signature.names
    # decoding checks each shape against the data received before it allocates anything
    arrays = [(t, decode_input(t, binaries.get(t.name))) for t in parsed.inputs]
    for _, array in arrays:  # the batch dimension, before the rows are built and checked
        check_instances(len(array) if array.ndim else 1, settings)
    if model.signature.image is not None:
        if len(arrays) != 1:
            raise BadRequest(f"an image model takes one input tensor, got {len(arrays)}")
        return tensor_rows(arrays[0][0].name, arrays[0][1], model.signature.image)
    if len(arrays) == 1 and (len(names) == 1 or arrays[0][0].name not in names):
        tensor, array = arrays[0]
        if array.ndim == 1 and len(names) == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2:
            raise BadRequest(
                f"input {tensor.name!r}: expected shape [batch, {len(names)}], got {tensor.shape}"
            )
        return array
    given = {t.name for t, _ in arrays}
    unknown, missing = given - set(names), [n for n in names if n not in given]
    if unknown or missing:
        raise BadRequest(
            f"inputs {sorted(given)} do not match the model: send one tensor [batch, "
            f"{len(names)}] or one tensor per feature named {names}"
        )
    columns = {t.name: _column(t, a) for t, a in arrays}
    sizes = {len(c) for c in columns.values()}
    if len(sizes) != 1:
        raise BadRequest(f"per-feature inputs have different batch sizes: {sorted(sizes)}")
    rows = np.empty((sizes.pop(), len(names)), dtype=object)
    for j, name in enumerate(names):
        rows[:, j] = columns[name]
    return rows


def _response(result: InferenceResult, parsed: InferenceRequest, request_id: str) -> Reply:
    arrays = result.output_arrays()
    wanted: list[RequestOutput | None] = [*parsed.outputs] if parsed.outputs else [None]
    all_binary = bool((parsed.parameters or {}).get("binary_data_output", False))
    outputs, chunks = [], []
    for output in wanted:
        names = list(arrays) if output is None else [output.name]
        for name in names:
            if name not in arrays:
                raise BadRequest(f"unknown output {name!r}; this model has {list(arrays)}")
            binary = all_binary
            if output is not None and output.parameters:
                binary = bool(output.parameters.get("binary_data", all_binary))
            header, raw = encode_output(name, arrays[name], binary)
            outputs.append(header)
            chunks.append(raw)
    body = {
        "model_name": result.model,
        "model_version": str(result.version),
        "id": request_id,
        "outputs": outputs,
    }
    headers = {"X-Model-Name": result.model, "X-Model-Version": str(result.version)}
    content = orjson.dumps(body)
    if not any(chunks):
        return Reply(content, headers)
    headers["Inference-Header-Content-Length"] = str(len(content))
    return Reply(content + b"".join(chunks), headers, media_type="application/octet-stream")


async def infer(call: Call) -> Reply:
    """``POST /v2/models/{name}[/versions/{version}]/infer`` (served by the pipeline)."""
    plane = call.plane
    model = plane.route(call.name, call.version)
    parsed, binaries = _parse(call.headers, call.body)
    try:
        rows = plane.check_rows(model, rows_of(model, parsed, binaries, call.settings))
        result = await plane.infer(model, rows)
    except InvalidInput as exc:
        raise BadRequest(exc.message) from exc
    return _response(result, parsed, parsed.id or call.request_id)


@router.post("/models/{name}/infer")
async def infer_route(request: Request, name: str) -> Response:
    return await serve(request, infer, name, None)


@router.post("/models/{name}/versions/{version}/infer")
async def infer_version_route(request: Request, name: str, version: str) -> Response:
    return await serve(request, infer, name, parse_version(version))
