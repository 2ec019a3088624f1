"""Generate modelport's Open Inference Protocol gRPC module from its ``.proto``.

``python -m tests.protocols.grpc_stubs`` (or ``make grpc-stubs``) rewrites
``open_inference_pb2.py`` and ``open_inference_pb2.pyi`` beside the proto;
``test_grpc_stubs`` checks that the committed files are what this generates.

The one change to protoc's output: the messages live in a descriptor pool of their own, not in
protobuf's default pool. tritonclient and the KServe SDK register the same ``inference.*``
names in the default pool, so a process that imports either of them could not load modelport's
module otherwise (and the two of them cannot even share a process).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "modelport" / "protocols" / "grpc_v2"
PROTO = "open_inference.proto"
DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
OWN_POOL = (
    "POOL = _descriptor_pool.DescriptorPool()  # modelport: a pool of its own (see grpc_stubs)\n"
    "DESCRIPTOR = POOL.AddSerializedFile("
)
STUB_DESCRIPTOR = "DESCRIPTOR: _descriptor.FileDescriptor\n"
STUB_POOL = (
    "from google.protobuf import descriptor_pool as _descriptor_pool\n\n"
    "POOL: _descriptor_pool.DescriptorPool\n"
)
OUTPUTS = ("open_inference_pb2.py", "open_inference_pb2.pyi")


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise RuntimeError(f"protoc's output changed: {old!r} is not once in {path.name}")
    path.write_text(text.replace(old, new))


def generate(target: Path, source: Path = PACKAGE) -> list[Path]:
    """Write the generated module and its type stub into ``target``."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{source}",
            f"--python_out={scratch}",
            f"--pyi_out={scratch}",
            str(source / PROTO),
        ]
        subprocess.run(command, check=True, capture_output=True)
        _replace_once(Path(scratch, OUTPUTS[0]), DEFAULT_POOL, OWN_POOL)
        _replace_once(Path(scratch, OUTPUTS[1]), STUB_DESCRIPTOR, STUB_DESCRIPTOR + STUB_POOL)
        written = []
        for name in OUTPUTS:
            shutil.copyfile(Path(scratch, name), target / name)
            written.append(target / name)
    return written


if __name__ == "__main__":
    for path in generate(PACKAGE):
        print(f"wrote {path}")
