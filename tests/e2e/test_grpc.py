"""The gRPC port of a real server, called with grpcio and modelport's own messages: status codes
for bad input, overload and deadlines, keys, health, the repository extension, metrics."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx2 as httpx
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelport.protocols.grpc_v2 import open_inference_pb2 as pb
from tests.helpers import Server, free_port, running_server, write_fake_model

pytestmark = pytest.mark.e2e

SERVICE = "/inference.GRPCInferenceService/"


class Stub:
    """Unary calls by method name, with modelport's own message classes."""

    def __init__(self, channel: grpc.Channel, address: str = "") -> None:
        self.channel = channel
        self.address = address

    def __call__(self, method: str, request: object, **kwargs: object) -> object:
        response = getattr(pb, type(request).__name__.replace("Request", "Response"))
        call = self.channel.unary_unary(
            SERVICE + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        return call(request, **kwargs)


def iris_request(rows: np.ndarray, **fields: object) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="iris", **fields)
    request.inputs.add(name="input", datatype="FP32", shape=list(rows.shape))
    request.raw_input_contents.append(rows.astype("<f4").tobytes())
    return request


def wait_for(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def code_of(stub: Stub, method: str, request: object, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub(method, request, **kwargs)
    return caught.value


@pytest.fixture(scope="module")
def served(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Stub]]:
    port = free_port()
    log = tmp_path_factory.mktemp("grpc") / "server.log"
    env = {"MODELPORT_ADMIN_KEY": "admin-secret", "MODELPORT_GRPC_MAX_MESSAGE_BYTES": "65536"}
    with (
        running_server([str(repo), "--grpc-port", str(port)], log, env=env) as server,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield server, Stub(channel, f"127.0.0.1:{port}")


def test_health_service(served: tuple[Server, Stub]) -> None:
    health = health_pb2_grpc.HealthStub(served[1].channel)
    for service in ("", "inference.GRPCInferenceService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.inputs[0].shape.__setitem__(1, 3), "bytes of binary data do not hold"),
        (lambda r: setattr(r.inputs[0], "datatype", "FP99"), "unknown datatype 'FP99'"),
        (lambda r: r.raw_input_contents.append(b"x"), "2 entries for 1 inputs"),
        (lambda r: setattr(r, "model_version", "abc"), "versions are positive integers"),
        (lambda r: r.outputs.add(name="nope"), "unknown output 'nope'"),
        (lambda r: setattr(r, "model_name", ""), "model_name is required"),
    ],
)
def test_bad_input_is_invalid_argument(
    served: tuple[Server, Stub], mutate: object, message: str
) -> None:
    request = iris_request(np.ones((2, 4)))
    mutate(request)
    error = code_of(served[1], "ModelInfer", request)
    expected = (
        grpc.StatusCode.NOT_FOUND if "versions" in message else grpc.StatusCode.INVALID_ARGUMENT
    )
    assert error.code() == expected
    assert message in error.details()


def test_wrong_width_and_typed_contents(served: tuple[Server, Stub]) -> None:
    stub = served[1]
    request = pb.ModelInferRequest(model_name="iris")
    tensor = request.inputs.add(name="input", datatype="FP64", shape=[1, 3])
    tensor.contents.fp64_contents.extend([1.0, 2.0, 3.0])
    error = code_of(stub, "ModelInfer", request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expected rows of 4 values" in error.details()
    tensor.shape[1] = 4
    tensor.contents.fp64_contents.append(0.2)
    answer = stub("ModelInfer", request)
    assert not answer.raw_output_contents  # typed in, typed out
    assert list(answer.outputs[0].contents.bytes_contents) == [b"setosa"]
    tensor.datatype = "FP32"  # its values still in fp64_contents: named, not "got 0 values"
    error = code_of(stub, "ModelInfer", request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "datatype FP32 reads its values from contents.fp32_contents" in error.details()
    assert "this input has them in contents.fp64_contents" in error.details()


def test_unknown_model_is_not_found_and_too_large_is_resource_exhausted(
    served: tuple[Server, Stub],
) -> None:
    stub = served[1]
    error = code_of(stub, "ModelMetadata", pb.ModelMetadataRequest(name="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    huge = iris_request(np.ones((5000, 4)))  # 80 kB > the 64 kB limit
    assert code_of(stub, "ModelInfer", huge).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_request_id_is_echoed_and_metrics_say_grpc(served: tuple[Server, Stub]) -> None:
    server, stub = served
    answer = stub("ModelInfer", iris_request(np.array([[5.1, 3.5, 1.4, 0.2]]), id="abc-1"))
    assert answer.id == "abc-1"
    assert (answer.model_name, answer.model_version) == ("iris", "1")
    metrics = httpx.get(f"{server.url}/metrics").text
    line = re.search(
        r'modelport_requests_total\{code="200",endpoint="/inference.GRPCInferenceService/'
        r'ModelInfer",method="POST",model="iris",protocol="grpc",variant="v1",version="1"\} (\S+)',
        metrics,
    )
    assert line is not None
    assert float(line.group(1)) >= 1
    assert 'code="400",endpoint="/inference.GRPCInferenceService/ModelInfer"' in metrics


def test_repository_load_and_unload_need_the_admin_key(served: tuple[Server, Stub]) -> None:
    stub = served[1]
    load = pb.RepositoryModelLoadRequest(model_name="wine")
    assert code_of(stub, "RepositoryModelLoad", load).code() == grpc.StatusCode.UNAUTHENTICATED
    admin = (("authorization", "Bearer admin-secret"),)
    stub(
        "RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name="wine"), metadata=admin
    )
    error = code_of(stub, "ModelReady", pb.ModelReadyRequest(name="wine"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    stub("RepositoryModelLoad", load, metadata=admin)
    assert stub("ModelReady", pb.ModelReadyRequest(name="wine")).ready
    index = stub("RepositoryIndex", pb.RepositoryIndexRequest(ready=True))
    assert {m.name for m in index.models} == {"iris", "wine", "sentiment"}


def test_overload_is_unavailable_with_retry_info(tmp_path: Path) -> None:
    write_fake_model(
        tmp_path / "repo",
        "slow",
        parameters={"delay_s": 0.3},
        batching={"max_batch_size": 1, "max_queue": 1},
    )
    port = free_port()
    args = [str(tmp_path / "repo"), "--grpc-port", str(port)]
    with (
        running_server(args, tmp_path / "log") as _,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        concurrent.futures.ThreadPoolExecutor(8) as pool,
    ):
        stub = Stub(channel)
        request = pb.ModelInferRequest(model_name="slow")
        request.inputs.add(
            name="input", datatype="FP64", shape=[1, 2]
        ).contents.fp64_contents.extend([1, 1])

        def call(_: int) -> grpc.RpcError | None:
            try:
                stub("ModelInfer", request, timeout=30)
            except grpc.RpcError as exc:
                return exc
            return None

        errors = list(pool.map(call, range(8)))
    refused = [e for e in errors if e is not None]
    assert refused
    assert len(refused) < len(errors)
    for error in refused:
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "queue is full" in error.details()
        trailers = dict(error.trailing_metadata())
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry)
        assert 1 <= retry.retry_delay.seconds <= 4  # spread (max_retry_after_s)
        assert trailers["retry-after"] == str(retry.retry_delay.seconds)


def test_a_deadline_shorter_than_the_queue_wait_drops_the_work(tmp_path: Path) -> None:
    flag = tmp_path / "predicting"
    parameters = {"delay_s": 0.6, "predict_flag": str(flag)}
    write_fake_model(
        tmp_path / "repo", "slow", parameters=parameters, batching={"max_batch_size": 1}
    )
    port = free_port()
    args = [str(tmp_path / "repo"), "--grpc-port", str(port)]
    with (
        running_server(args, tmp_path / "log") as server,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        stub = Stub(channel)
        request = pb.ModelInferRequest(model_name="slow")
        request.inputs.add(
            name="input", datatype="FP64", shape=[1, 2]
        ).contents.fp64_contents.extend([1, 1])
        first = pool.submit(stub, "ModelInfer", request, timeout=30)
        wait_for(flag.exists)  # the first call is in the model: the next one waits in the queue
        error = code_of(stub, "ModelInfer", request, timeout=0.2)
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        first.result()
        stub("ModelInfer", request, timeout=30)  # queued after the dropped one
        metrics = httpx.get(f"{server.url}/metrics").text
    batches = re.search(r'modelport_batch_size_count\{model="slow",version="1"\} (\S+)', metrics)
    assert batches is not None
    assert float(batches.group(1)) == 2  # the call whose deadline passed never reached the model
    assert 'code="504",endpoint="/inference.GRPCInferenceService/ModelInfer"' in metrics


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "grpcurl"
    return subprocess.run(
        [str(binary), "-plaintext", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_grpcurl_by_reflection(served: tuple[Server, Stub]) -> None:
    """The README's grpcurl commands: no .proto file, the server describes itself."""
    address = served[1].address
    listed = grpcurl(address, "list")
    assert listed.returncode == 0, listed.stderr
    assert "inference.GRPCInferenceService" in listed.stdout.split()
    body = {
        "model_name": "iris",
        "inputs": [
            {
                "name": "input",
                "datatype": "FP64",
                "shape": [1, 4],
                "contents": {"fp64_contents": [5.1, 3.5, 1.4, 0.2]},
            }
        ],
    }
    answer = grpcurl("-d", json.dumps(body), address, "inference.GRPCInferenceService/ModelInfer")
    assert answer.returncode == 0, answer.stderr
    outputs = {o["name"]: o for o in json.loads(answer.stdout)["outputs"]}
    assert base64.b64decode(outputs["predict"]["contents"]["bytes_contents"][0]) == b"setosa"
    health = grpcurl("-d", '{"service": ""}', address, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout) == {"status": "SERVING"}
    bad = grpcurl(
        "-d", '{"model_name": "iris"}', address, "inference.GRPCInferenceService/ModelInfer"
    )
    assert "InvalidArgument" in bad.stderr
    assert "the request has no inputs" in bad.stderr


def test_workers_share_the_grpc_port(repo: Path, tmp_path: Path) -> None:
    port = free_port()
    args = [str(repo), "--workers", "2", "--grpc-port", str(port)]
    with running_server(args, tmp_path / "log") as server:
        wait_for(lambda: server.output().count("serving gRPC on") == 2)
        for _ in range(4):  # a channel each: connections spread over the workers
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                answer = Stub(channel)("ModelInfer", iris_request(np.ones((1, 4))))
                assert answer.model_name == "iris"


def test_grpc_over_tls(repo: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    env = {"MODELPORT_GRPC_TLS_CERT": str(cert), "MODELPORT_GRPC_TLS_KEY": str(key)}
    args = [str(repo), "--grpc-port", str(port)]
    credentials = grpc.ssl_channel_credentials(cert.read_bytes())
    with (
        running_server(args, tmp_path / "log", env=env),
        grpc.secure_channel(f"localhost:{port}", credentials) as channel,
    ):
        assert Stub(channel)("ServerReady", pb.ServerReadyRequest()).ready
