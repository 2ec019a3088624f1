"""The Open Inference Protocol over gRPC (``pip install 'modelport[grpc]'``).

- ``open_inference.proto``: the protocol's service and messages (package ``inference``), with
  the model repository extension; ``open_inference_pb2`` is generated from it.
- :mod:`.codec`: protobuf tensors to and from the REST adapter's tensors.
- :mod:`.service`: the calls, on the data plane, and gRPC status codes for modelport's errors.

Nothing here is imported unless the server has a gRPC port (``MODELPORT_GRPC_PORT``).
"""
