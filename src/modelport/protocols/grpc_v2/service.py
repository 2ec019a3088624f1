"""``inference.GRPCInferenceService``: the Open Inference Protocol's calls over gRPC, on the same
data plane as REST (routing, traffic policies, batching, deadlines, backpressure).

Each call is ``async (RpcCall, request) -> response`` and raises modelport's errors; the server
(:mod:`modelport.server.grpc_server`) observes every call and turns an error into its gRPC status
with :func:`status_of`. Model versions travel as strings: empty means the model's default (or the
one its traffic policy picks). Predictions need the inference key when one is set, and
repository loads and unloads the admin key when one is set, as on REST: sent as the metadata
``authorization: Bearer <key>`` (or ``x-api-key`` / ``x-admin-key``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import Message

from modelport._version import __version__
from modelport.core import context
from modelport.core.dataplane import DataPlane
from modelport.core.registry import LoadedModel
from modelport.core.result import InferenceResult
from modelport.errors import BadRequest, GatewayTimeout, ModelportError
from modelport.protocols import v2, v2_repository
from modelport.protocols._http import parse_version
from modelport.protocols.auth import check_inference, inference_keys
from modelport.protocols.grpc_v2 import open_inference_pb2 as pb
from modelport.protocols.grpc_v2.codec import decode_request, encode_response
from modelport.settings import Settings

__all__ = ["RPCS", "SERVICE", "Rpc", "RpcCall", "status_of"]

SERVICE = "inference.GRPCInferenceService"
_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+

_CODES = {
    HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.UNPROCESSABLE_ENTITY: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    HTTPStatus.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED: grpc.StatusCode.UNIMPLEMENTED,
    HTTPStatus.CONFLICT: grpc.StatusCode.FAILED_PRECONDITION,
    HTTPStatus.SERVICE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    HTTPStatus.GATEWAY_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_of(error: ModelportError) -> grpc.StatusCode:
    """The gRPC status of an error (INTERNAL for a server fault; never UNKNOWN)."""
    return _CODES.get(error.status, grpc.StatusCode.INTERNAL)


@dataclass(frozen=True, slots=True)
class RpcCall:
    """What a call gets: the data plane, settings, the metadata as headers, the request id and
    the seconds left before the client's deadline (``None``: no deadline)."""

    plane: DataPlane
    settings: Settings
    headers: list[tuple[bytes, bytes]]
    request_id: str
    time_left: float | None = None


Handler = Callable[[RpcCall, Any], Awaitable[Message]]


@dataclass(frozen=True, slots=True)
class Rpc:
    """One method of the service: its messages, handler, and whether it is a prediction."""

    name: str
    request: type[Message]
    response: type[Message]
    handler: Handler
    predicts: bool = False

    @property
    def path(self) -> str:
        return f"/{SERVICE}/{self.name}"


def _version(text: str) -> int | None:
    return parse_version(text) if text else None


def _name(text: str, what: str = "name") -> str:
    if not text:
        raise BadRequest(f"{what} is required")
    return text


async def server_live(call: RpcCall, _: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
    return pb.ServerLiveResponse(live=True)


async def server_ready(call: RpcCall, _: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
    return pb.ServerReadyResponse(ready=call.plane.ready())


async def model_ready(call: RpcCall, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
    ready = v2.model_is_ready(call.plane, _name(request.name), _version(request.version))
    return pb.ModelReadyResponse(ready=ready)


async def server_metadata(call: RpcCall, _: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
    return pb.ServerMetadataResponse(
        name="modelport", version=__version__, extensions=v2.EXTENSIONS
    )


async def model_metadata(
    call: RpcCall, request: pb.ModelMetadataRequest
) -> pb.ModelMetadataResponse:
    plane = call.plane
    found = v2.model_metadata(plane, plane.version(_name(request.name), _version(request.version)))
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=found["name"],
        versions=found["versions"],
        platform=found["platform"],
        inputs=[tensor(**t) for t in found["inputs"]],
        outputs=[tensor(**t) for t in found["outputs"]],
    )


async def _infer(call: RpcCall, model: LoadedModel, rows: np.ndarray) -> InferenceResult:
    """The data plane's prediction, within the client's deadline: past it the prediction is
    cancelled (dropped from the model's queue if it waits there) and the call answers
    DEADLINE_EXCEEDED."""
    if call.time_left is None:
        return await call.plane.infer(model, rows)
    try:
        if _timeout is None:  # Python 3.10
            return await asyncio.wait_for(call.plane.infer(model, rows), call.time_left)
        async with _timeout(call.time_left):
            return await call.plane.infer(model, rows)
    except asyncio.TimeoutError as exc:
        raise GatewayTimeout(
            f"the call's deadline ({call.time_left:.3g} s) passed before model "
            f"{model.name!r} answered; the prediction was dropped"
        ) from exc


async def model_infer(call: RpcCall, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    plane, keys = call.plane, inference_keys(call.settings.inference_key)
    if keys:
        scope = check_inference(call.headers, keys)
        info = context.current()
        if info is not None:  # the prediction is recorded in the key's caller scope
            info.scope = scope
    model = plane.route(_name(request.model_name, "model_name"), _version(request.model_version))
    parsed, binaries = decode_request(request)
    rows = plane.check_rows(model, v2.rows_of(model, parsed, binaries, call.settings))
    result = await _infer(call, model, rows)
    return encode_response(result, request, request.id or call.request_id)


async def repository_index(
    call: RpcCall, request: pb.RepositoryIndexRequest
) -> pb.RepositoryIndexResponse:
    entries = v2_repository.index_entries(call.plane, request.ready)
    index = pb.RepositoryIndexResponse.ModelIndex
    return pb.RepositoryIndexResponse(models=[index(**entry) for entry in entries])


def _repository_model(
    call: RpcCall, request: pb.RepositoryModelLoadRequest | pb.RepositoryModelUnloadRequest
) -> str:
    v2_repository.guard(call.settings, call.headers)
    # KServe's grpc_predict_v2.proto puts model_name in field 1, Triton's repository_name.
    return _name(request.model_name or request.repository_name, "model_name")


async def repository_model_load(
    call: RpcCall, request: pb.RepositoryModelLoadRequest
) -> pb.RepositoryModelLoadResponse:
    await v2_repository.load_model(call.plane, _repository_model(call, request))
    return pb.RepositoryModelLoadResponse()


async def repository_model_unload(
    call: RpcCall, request: pb.RepositoryModelUnloadRequest
) -> pb.RepositoryModelUnloadResponse:
    await v2_repository.unload_model(call.plane, _repository_model(call, request))
    return pb.RepositoryModelUnloadResponse()


#: Every method of the service, in the order of the proto.
RPCS = (
    Rpc("ServerLive", pb.ServerLiveRequest, pb.ServerLiveResponse, server_live),
    Rpc("ServerReady", pb.ServerReadyRequest, pb.ServerReadyResponse, server_ready),
    Rpc("ModelReady", pb.ModelReadyRequest, pb.ModelReadyResponse, model_ready),
    Rpc("ServerMetadata", pb.ServerMetadataRequest, pb.ServerMetadataResponse, server_metadata),
    Rpc("ModelMetadata", pb.ModelMetadataRequest, pb.ModelMetadataResponse, model_metadata),
    Rpc("ModelInfer", pb.ModelInferRequest, pb.ModelInferResponse, model_infer, predicts=True),
    Rpc(
        "RepositoryIndex",
        pb.RepositoryIndexRequest,
        pb.RepositoryIndexResponse,
        repository_index,
    ),
    Rpc(
        "RepositoryModelLoad",
        pb.RepositoryModelLoadRequest,
        pb.RepositoryModelLoadResponse,
        repository_model_load,
    ),
    Rpc(
        "RepositoryModelUnload",
        pb.RepositoryModelUnloadRequest,
        pb.RepositoryModelUnloadResponse,
        repository_model_unload,
    ),
)
