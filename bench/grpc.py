"""gRPC beside REST: the same modelport server and model (Iris LogisticRegression), asked by
Triton's two clients with binary tensors, ``tritonclient.grpc`` on the gRPC port and
``tritonclient.http`` on the Open Inference Protocol's REST route; the row is their ratio.

Both clients are Python, in threads of this process (one client each, a closed loop), so the
ratio compares the two transports under the same client cost; wrk cannot speak gRPC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ROWS = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
CONNECTIONS = 8


@dataclass(frozen=True)
class GrpcRow:
    connections: int
    rest_rps: float
    grpc_rps: float

    @property
    def ratio(self) -> float:
        return self.grpc_rps / self.rest_rps if self.rest_rps else float("nan")


def _rest(address: str) -> Callable[[], object]:
    import tritonclient.http as http

    client = http.InferenceServerClient(address)
    tensor = http.InferInput("input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS)
    return lambda: client.infer("iris", [tensor])


def _grpc(address: str) -> Callable[[], object]:
    import tritonclient.grpc as grpc

    client = grpc.InferenceServerClient(address)
    tensor = grpc.InferInput("input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS)
    return lambda: client.infer("iris", [tensor])


def _throughput(make: Callable[[str], Callable[[], object]], address: str, seconds: float) -> float:
    calls = [make(address) for _ in range(CONNECTIONS)]
    counts = [0] * CONNECTIONS
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        while time.perf_counter() < deadline:
            calls[index]()
            counts[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONNECTIONS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def run(http_address: str, grpc_address: str, seconds: float) -> GrpcRow:
    rest = _throughput(_rest, http_address, seconds)
    grpc = _throughput(_grpc, grpc_address, seconds)
    return GrpcRow(CONNECTIONS, rest, grpc)


def render(row: GrpcRow | None) -> list[str]:
    if row is None:
        return ["Not measured in this run (`BENCH_ONLY` without `grpc`)."]
    return [
        "| transport (tritonclient, binary tensors) | connections | req/s | vs REST |",
        "|---|---:|---:|---:|",
        f"| REST (`/v2/models/iris/infer`) | {row.connections} | {row.rest_rps:,.0f} | 1.00 |",
        f"| gRPC (`ModelInfer`) | {row.connections} | {row.grpc_rps:,.0f} | {row.ratio:.2f} |",
    ]
