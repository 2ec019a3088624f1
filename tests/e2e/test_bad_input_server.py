"""Bad input against a real server: the connection survives a 422 with a huge integer, and a
V2 tensor whose shape is far larger than its data takes no memory (peak RSS measured)."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.helpers import IRIS_ROW, Server, running_server

pytestmark = pytest.mark.e2e

BIG = "123456789012345678901234567890"


@pytest.fixture(scope="module")
def server(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("bad-input") / "log"
    env = {"MODELPORT_OUTCOMES": "false"}
    with running_server([str(repo)], log, env) as started:
        yield started


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def _post(sock: socket.socket, path: str, body: bytes) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)


@pytest.mark.parametrize("path", ["/predict", "/models/sentiment/predict"])
def test_a_huge_integer_answers_422_and_keeps_the_connection(server: Server, path: str) -> None:
    field = "text" if "sentiment" in path else "sepal_length"
    row = {**IRIS_ROW} if field != "text" else {}
    body = json.dumps({**row, field: "BIG"}).replace('"BIG"', BIG).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        _post(sock, path, body)
        status, headers, answer = _answer(sock)
        assert status == 422
        assert headers.get("connection", "").lower() != "close"
        assert json.loads(answer)["detail"][0]["input"] == BIG
        _post(sock, "/predict", json.dumps(IRIS_ROW).encode())  # the same connection
        status, _, answer = _answer(sock)
        assert status == 200
        assert json.loads(answer)["prediction"] == "setosa"


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_bytes_shape_larger_than_its_data_takes_no_memory(server: Server) -> None:
    """The finding: 4 bytes declared as 300 million BYTES elements took 2.3 GB at peak."""
    before = _peak_rss_kb(server.process.pid)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "shape": [300_000_000],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 4},
                }
            ]
        }
    ).encode()
    response = httpx.post(
        f"{server.url}/v2/models/sentiment/infer",
        content=header + struct.pack("<I", 0),
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=30,
    )
    grown_mb = (_peak_rss_kb(server.process.pid) - before) / 1024
    assert grown_mb < 20, f"peak RSS grew by {grown_mb:.0f} MB"
    assert response.status_code == 400
    assert "cannot hold 300000000 elements" in response.json()["error"]
