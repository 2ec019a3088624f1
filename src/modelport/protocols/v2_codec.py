"""Open Inference Protocol (V2) tensors: wire models, datatypes, JSON and binary encodings.

The binary tensor extension (tritonclient's default): the JSON header's length is given by the
``Inference-Header-Content-Length`` header, and the raw little-endian, row-major tensors follow it
in input order, each ``parameters.binary_data_size`` bytes long; a BYTES element is a 4-byte
little-endian length followed by its bytes.

A declared shape never sizes an allocation by itself: the number of elements it declares is
checked against the data received (JSON values, or binary bytes) before any array is made, so a
small body cannot make the server take memory for a large tensor.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelport.core.validation import bounded
from modelport.errors import BadRequest

__all__ = [
    "DTYPES",
    "MAX_ELEMENTS",
    "MAX_RANK",
    "InferenceRequest",
    "RequestInput",
    "RequestOutput",
    "datatype_of",
    "decode_input",
    "encode_output",
]

MAX_RANK = 8  # dimensions of a tensor at most
MAX_ELEMENTS = 2**31 - 1  # elements of a tensor at most (counting empty axes as 1)
_MAX_NAME = 256  # characters of a tensor's name: messages quote it
_LENGTH_PREFIX = 4  # bytes before each element of binary BYTES data

DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(max_length=_MAX_NAME)
    shape: list[int] = Field(max_length=MAX_RANK)
    datatype: str = Field(max_length=16)
    parameters: dict[str, Any] | None = None
    data: Any = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(max_length=_MAX_NAME)
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = Field(None, max_length=1024)  # echoed in the answer
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _unpack_bytes(raw: bytes, count: int, name: str) -> np.ndarray:
    if count * _LENGTH_PREFIX > len(raw):  # before the array: a shape must not size it alone
        raise BadRequest(
            f"input {name!r}: {len(raw)} bytes of binary BYTES data cannot hold {count} "
            f"elements (each takes at least {_LENGTH_PREFIX} bytes)"
        )
    out = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > len(raw):
            raise BadRequest(
                f"input {name!r}: binary BYTES data ends after {i} of {count} elements"
            )
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(f"input {name!r}: BYTES element {i} is longer than the data")
        out[i] = raw[offset : offset + length]
        offset += length
    if offset != len(raw):
        raise BadRequest(f"input {name!r}: {len(raw) - offset} bytes left after {count} elements")
    return out


def _check_shape(tensor: RequestInput) -> int:
    """The number of elements the shape declares, once each dimension is in bounds."""
    shape = tensor.shape
    if any(d < 0 for d in shape):
        raise BadRequest(f"input {tensor.name!r}: negative dimension in shape {bounded(shape, 80)}")
    if len(shape) > MAX_RANK:
        raise BadRequest(
            f"input {tensor.name!r}: shape {bounded(shape, 80)} has more than {MAX_RANK} dimensions"
        )
    if math.prod(max(d, 1) for d in shape) > MAX_ELEMENTS:  # numpy's bound, empty axes too
        raise BadRequest(
            f"input {tensor.name!r}: shape {bounded(shape, 80)} is larger than "
            f"{MAX_ELEMENTS} elements"
        )
    return math.prod(shape)


def decode_input(tensor: RequestInput, binary: bytes | None) -> np.ndarray:
    """The tensor as a numpy array of its shape (BYTES as an object array of ``bytes``/``str``)."""
    dtype = DTYPES.get(tensor.datatype)
    if dtype is None:
        raise BadRequest(
            f"input {tensor.name!r}: unknown datatype {tensor.datatype!r}; "
            f"use one of {', '.join(DTYPES)}"
        )
    count = _check_shape(tensor)
    if binary is not None:
        if tensor.datatype == "BYTES":
            return _unpack_bytes(binary, count, tensor.name).reshape(tensor.shape)
        if len(binary) != count * dtype.itemsize:
            raise BadRequest(
                f"input {tensor.name!r}: {len(binary)} bytes of binary data do not hold "
                f"{count} {tensor.datatype} values of shape {bounded(tensor.shape, 80)}"
            )
        return np.frombuffer(binary, dtype=dtype).reshape(tensor.shape)
    if tensor.data is None:
        raise BadRequest(f"input {tensor.name!r} has neither data nor binary_data_size")
    flat = _flatten(tensor.data)
    if len(flat) != count:
        raise BadRequest(
            f"input {tensor.name!r}: shape {bounded(tensor.shape, 80)} needs {count} values, "
            f"got {len(flat)}"
        )
    if tensor.datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = flat
        return array.reshape(tensor.shape)
    try:
        return np.asarray(flat, dtype=dtype).reshape(tensor.shape)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(
            f"input {tensor.name!r}: data is not {tensor.datatype}: {bounded(str(exc))}"
        ) from exc


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype of a numpy array (object and string arrays are BYTES)."""
    if array.dtype.kind in "OUS":
        return "BYTES"
    for name, dtype in DTYPES.items():
        if name != "BYTES" and array.dtype == dtype:
            return name
    return "FP64"


def _pack_bytes(array: np.ndarray) -> bytes:
    parts = []
    for item in array.reshape(-1):
        raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
        parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)


def encode_output(name: str, array: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes]:
    """The output's JSON part and, when ``binary``, its raw bytes (else ``b""``)."""
    datatype = datatype_of(array)
    header: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": datatype}
    if binary:
        if datatype == "BYTES":
            raw = _pack_bytes(array)
        else:
            raw = np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()
        header["parameters"] = {"binary_data_size": len(raw)}
        return header, raw
    if datatype == "BYTES":
        data = [
            x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
            for x in array.reshape(-1)
        ]
    else:
        data = array.reshape(-1).tolist()
    header["data"] = data
    return header, b""
