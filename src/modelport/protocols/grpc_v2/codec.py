"""Open Inference Protocol tensors over gRPC: protobuf messages to the REST adapter's tensors
and back, so both transports decode, check and encode with one codec
(:mod:`modelport.protocols.v2_codec`).

Inputs come either all in ``raw_input_contents`` (tritonclient's way: one entry per input,
little-endian, row-major; a BYTES element is a 4-byte length and its bytes) or each in its
``contents`` field for its datatype. Outputs come back in the form the inputs came in: raw when
the request sent raw inputs (or asked with the ``binary_data_output`` parameter), typed
``contents`` otherwise. FP16 has no typed field: it travels raw only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelport.core.result import InferenceResult
from modelport.errors import BadRequest
from modelport.protocols.grpc_v2 import open_inference_pb2 as pb
from modelport.protocols.v2_codec import (
    InferenceRequest,
    RequestInput,
    RequestOutput,
    encode_output,
)

__all__ = ["CONTENTS", "decode_request", "encode_response", "parameters_of"]

#: The ``InferTensorContents`` field of each datatype (FP16 has none: raw only).
CONTENTS: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def parameters_of(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """A parameter map as plain values (an unset parameter is ``None``)."""
    values: dict[str, Any] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = None if choice is None else getattr(parameter, choice)
    return values


def _typed(tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    field = CONTENTS.get(tensor.datatype)
    if field is None:
        if tensor.datatype == "FP16":
            raise BadRequest(f"input {tensor.name!r}: FP16 travels in raw_input_contents only")
        return []  # an unknown datatype: decode_input names it
    values = list(getattr(tensor.contents, field))
    if not values:  # the values in another field: say which one the datatype reads
        other = next((f for f in CONTENTS.values() if getattr(tensor.contents, f)), None)
        if other is not None:
            raise BadRequest(
                f"input {tensor.name!r}: datatype {tensor.datatype} reads its values from "
                f"contents.{field}, and this input has them in contents.{other}"
            )
    return values


def decode_request(
    message: pb.ModelInferRequest,
) -> tuple[InferenceRequest, dict[str, bytes]]:
    """The request as the REST adapter's :class:`InferenceRequest`, with each input's raw data."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs"
        )
    if not message.inputs:
        raise BadRequest("the request has no inputs")
    inputs: list[RequestInput] = []
    binaries: dict[str, bytes] = {}
    for index, tensor in enumerate(message.inputs):
        if any(t.name == tensor.name for t in inputs):
            raise BadRequest(f"input {tensor.name!r} is given twice")
        if raw and tensor.HasField("contents"):
            raise BadRequest(f"input {tensor.name!r} has contents while raw_input_contents is used")
        data = None
        if raw:
            binaries[tensor.name] = raw[index]
        else:
            data = _typed(tensor)
        inputs.append(
            RequestInput.model_construct(
                name=tensor.name,
                shape=list(tensor.shape),
                datatype=tensor.datatype,
                parameters=parameters_of(tensor.parameters) or None,
                data=data,
            )
        )
    outputs = [
        RequestOutput.model_construct(name=o.name, parameters=parameters_of(o.parameters))
        for o in message.outputs
    ]
    parsed = InferenceRequest.model_construct(
        id=message.id or None,
        parameters=parameters_of(message.parameters),
        inputs=inputs,
        outputs=outputs or None,
    )
    return parsed, binaries


def _contents(output: pb.ModelInferResponse.InferOutputTensor, values: list[Any]) -> None:
    if output.datatype == "BYTES":
        values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]
    getattr(output.contents, CONTENTS[output.datatype]).extend(values)


def encode_response(
    result: InferenceResult, message: pb.ModelInferRequest, request_id: str
) -> pb.ModelInferResponse:
    """The answer: the outputs asked for (default: all), raw when the request was raw."""
    arrays = result.output_arrays()
    names = [o.name for o in message.outputs] or list(arrays)
    for name in names:
        if name not in arrays:
            raise BadRequest(f"unknown output {name!r}; this model has {list(arrays)}")
    wanted = parameters_of(message.parameters).get("binary_data_output")
    raw = bool(message.raw_input_contents) or bool(wanted)
    encoded = [encode_output(name, arrays[name], True) for name in names]
    raw = raw or any(header["datatype"] not in CONTENTS for header, _ in encoded)
    response = pb.ModelInferResponse(
        model_name=result.model, model_version=str(result.version), id=request_id
    )
    for name, (header, data) in zip(names, encoded, strict=True):
        output = response.outputs.add(
            name=header["name"], datatype=header["datatype"], shape=header["shape"]
        )
        if raw:
            response.raw_output_contents.append(data)
        else:
            _contents(output, np.asarray(arrays[name]).reshape(-1).tolist())
    return response
