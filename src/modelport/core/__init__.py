"""The protocol-neutral core: the data plane, the registry of loaded versions, the repository on
disk, request validation and the per-request context. It imports no web framework."""
