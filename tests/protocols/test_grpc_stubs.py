"""The committed gRPC module is what its .proto generates (``make grpc-stubs`` rewrites it)."""

from __future__ import annotations

from pathlib import Path

from tests.protocols.grpc_stubs import OUTPUTS, PACKAGE, generate


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    generate(tmp_path)
    for name in OUTPUTS:
        fresh = (tmp_path / name).read_text()
        assert (PACKAGE / name).read_text() == fresh, f"{name} is stale: run make grpc-stubs"


def test_messages_live_in_a_pool_of_their_own() -> None:
    from modelport.protocols.grpc_v2 import open_inference_pb2 as pb

    service = pb.POOL.FindServiceByName("inference.GRPCInferenceService")
    assert [m.name for m in service.methods][:6] == [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    ]
    from google.protobuf import descriptor_pool

    assert pb.ModelInferRequest.DESCRIPTOR.file.pool is pb.POOL
    assert pb.POOL is not descriptor_pool.Default()
