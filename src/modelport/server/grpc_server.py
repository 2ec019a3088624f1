"""The gRPC server beside HTTP: ``inference.GRPCInferenceService``, ``grpc.health.v1.Health`` and
server reflection, on ``settings.grpc_port``, in the app's own event loop and process.

The app's lifespan starts it once the models are loaded (:func:`serving`) and stops it on
shutdown, giving calls in flight ``settings.graceful_timeout`` seconds. With several workers each
binds the same port with ``SO_REUSEPORT`` and the kernel spreads connections over them (a gRPC
connection is long-lived: one client channel stays with one worker).

Every call passes one observing wrapper (:class:`_Observed`): a request id (the caller's
``x-request-id`` metadata when sane), the request context the data plane fills in, a trace span
when tracing is on, and :meth:`~modelport.server.observe.Observe.rpc_answered` once it is
answered. Errors become their gRPC status; an overload answers UNAVAILABLE with a
``google.rpc.RetryInfo`` detail and ``retry-after`` trailing metadata.

Health: the services ``""`` and ``inference.GRPCInferenceService`` are SERVING when the models are
ready (as ``/v2/health/ready``), NOT_SERVING while they load or once the server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from modelport.core import context
from modelport.errors import ConfigError, ModelportError, Overloaded
from modelport.protocols.grpc_v2 import open_inference_pb2 as pb
from modelport.protocols.grpc_v2.service import RPCS, SERVICE, Rpc, RpcCall, status_of
from modelport.server.observe import ObservedRpc

if TYPE_CHECKING:
    from modelport.core.dataplane import DataPlane
    from modelport.observability.tracing import Tracing
    from modelport.server.observe import Observe
    from modelport.settings import Settings

__all__ = ["DEADLINE_SLACK_S", "cancelled_status", "serving"]

log = logging.getLogger("modelport.server.grpc")
DEADLINE_SLACK_S = 0.05  # a cancel this close to the call's deadline is the deadline's
_HEALTH = health_pb2.HealthCheckResponse


def _headers(metadata: Any) -> list[tuple[bytes, bytes]]:
    """Call metadata as (lower-case) HTTP-style headers, for the key checks and traffic."""
    return [
        (key.encode("latin-1"), value if isinstance(value, bytes) else value.encode("latin-1"))
        for key, value in metadata or ()
    ]


def _details(error: ModelportError, code: grpc.StatusCode) -> tuple[tuple[str, str | bytes], ...]:
    """Trailing metadata of an error: retry advice on overload (RetryInfo, as Google APIs do)."""
    if not isinstance(error, Overloaded):
        return ()
    seconds = int(error.headers().get("Retry-After", "1"))
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
    status = status_pb2.Status(code=code.value[0], message=error.message)
    status.details.add().Pack(retry)
    return (("grpc-status-details-bin", status.SerializeToString()), ("retry-after", str(seconds)))


class _Observed:
    """One method's handler: serve the call on the data plane, answer errors, observe it."""

    def __init__(self, rpc: Rpc, plane: DataPlane, settings: Settings, observe: Observe) -> None:
        self.rpc, self.plane, self.settings, self.observe = rpc, plane, settings, observe
        self.tracing: Tracing | None = None

    async def handle(
        self, request: Message, servicer: grpc.aio.ServicerContext[Any, Any]
    ) -> Message:
        started = time.perf_counter()
        headers = _headers(servicer.invocation_metadata())
        info = context.RequestInfo(context.request_id(headers), headers, started)
        token = context.bind(info)
        self.observe.arrived()
        outcome = [500]  # the status the answer stands for, set once it is known
        try:
            if self.tracing is None:
                return await self._serve(request, servicer, info, outcome)
            with self.tracing.request({"method": "POST", "path": self.rpc.path}, started) as span:
                try:
                    return await self._serve(request, servicer, info, outcome)
                finally:
                    span.finish(self.rpc.path, outcome[0], info)
        finally:
            context.unbind(token)
            info.release()
            self.observe.rpc_answered(
                self._seen(request, servicer), info, outcome[0], time.perf_counter() - started
            )

    async def _serve(
        self,
        request: Message,
        servicer: grpc.aio.ServicerContext[Any, Any],
        info: context.RequestInfo,
        outcome: list[int],
    ) -> Message:
        call = RpcCall(
            self.plane, self.settings, info.headers, info.request_id, servicer.time_remaining()
        )
        trailing: list[tuple[str, str | bytes]] = [("x-request-id", info.request_id)]
        try:
            response = await self.rpc.handler(call, request)
        except ModelportError as exc:
            outcome[0] = int(exc.status)
            if exc.status >= 500:
                log.error("%s: %s", self.rpc.path, exc.message)
            code = status_of(exc)
            await servicer.abort(code, exc.message, (*trailing, *_details(exc, code)))
        except asyncio.CancelledError:  # the client went away, or its deadline passed
            outcome[0] = cancelled_status(servicer.time_remaining())
            raise
        except Exception as exc:
            log.exception("unexpected error on %s", self.rpc.path)
            message = f"internal error: {type(exc).__name__}"
            await servicer.abort(grpc.StatusCode.INTERNAL, message, tuple(trailing))
        outcome[0] = 200
        if info.variant:
            trailing.append(("x-model-variant", info.variant))
        servicer.set_trailing_metadata(tuple(trailing))
        return response

    def _seen(self, request: Message, servicer: grpc.aio.ServicerContext[Any, Any]) -> ObservedRpc:
        if not self.rpc.predicts or not isinstance(request, pb.ModelInferRequest):
            return ObservedRpc(self.rpc.path, servicer.peer())
        number = request.model_version
        version = int(number) if number.isdigit() and len(number) <= 9 else None
        return ObservedRpc(
            self.rpc.path, servicer.peer(), True, request.model_name or None, version
        )


class _Health(health.aio.HealthServicer):
    """``grpc.health.v1``: the services are SERVING while the models are ready."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self._ready = ready
        self.stopping = False

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in ("", SERVICE):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        ok = self._ready() and not self.stopping
        status = _HEALTH.SERVING if ok else _HEALTH.NOT_SERVING
        await self.set(request.service, status)  # Watch callers see the change too
        return _HEALTH(status=status)


def _options(settings: Settings) -> list[tuple[str, Any]]:
    size = settings.grpc_max_message_bytes
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
        # several workers share the port; one worker must fail on a port already taken
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
    ]


def _credentials(settings: Settings) -> grpc.ServerCredentials | None:
    cert, key = settings.grpc_tls_cert, settings.grpc_tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("gRPC over TLS needs both MODELPORT_GRPC_TLS_CERT and _KEY")
    try:
        pair = (key.read_bytes(), cert.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the gRPC TLS files: {exc}") from exc
    return grpc.ssl_server_credentials([pair])


def _handlers(observed: list[_Observed]) -> grpc.GenericRpcHandler:
    methods = {
        o.rpc.name: grpc.unary_unary_rpc_method_handler(
            o.handle,  # a coroutine function: grpc.aio awaits it
            request_deserializer=o.rpc.request.FromString,
            response_serializer=o.rpc.response.SerializeToString,
        )
        for o in observed
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def _bind(server: grpc.aio.Server, settings: Settings) -> int:
    address = f"{settings.host}:{settings.grpc_port}"
    credentials = _credentials(settings)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise ConfigError(f"cannot serve gRPC on {address}: {exc}") from exc
    if port == 0:
        raise ConfigError(f"cannot serve gRPC on {address}: the port is taken or not allowed")
    return port


def _add_health_to(pool: Any) -> None:
    """Reflection answers from the protocol's pool: let it describe the health service too."""
    try:
        pool.FindServiceByName("grpc.health.v1.Health")
    except KeyError:
        pool.AddSerializedFile(health_pb2.DESCRIPTOR.serialized_pb)


@asynccontextmanager
async def serving(
    settings: Settings, plane: DataPlane, observe: Observe, tracing: Tracing | None
) -> AsyncIterator[int]:
    """Serve gRPC inside the block; yields the bound port."""
    server = grpc.aio.server(options=_options(settings))
    observed = [_Observed(rpc, plane, settings, observe) for rpc in RPCS]
    for handler in observed:
        handler.tracing = tracing
    server.add_generic_rpc_handlers((_handlers(observed),))
    checker = _Health(plane.ready)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    _add_health_to(pb.POOL)
    names = (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=pb.POOL)
    port = _bind(server, settings)
    await server.start()
    log.info("serving gRPC on %s:%d", settings.host, port)
    try:
        yield port
    finally:
        checker.stopping = True
        await server.stop(settings.graceful_timeout)


def cancelled_status(remaining: float | None) -> int:
    """The status a cancelled call stands for: 504 when its deadline passed, 499 when the client
    went away before. ``remaining`` is the server's view of the deadline (``None``: none). A
    client cancels at its own deadline, which the server, having received the call a moment
    later, sees a moment later: so a cancel within :data:`DEADLINE_SLACK_S` of it counts as the
    deadline's (and the data plane's own deadline, racing it, answers 504 too)."""
    return 504 if remaining is not None and remaining <= DEADLINE_SLACK_S else 499
