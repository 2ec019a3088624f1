"""OpenTelemetry traces (``pip install 'modelport[otel]'``, ``MODELPORT_TRACING=true``).

Each HTTP request is a server span named ``METHOD /route/template`` with the request id, model,
version, variant and status as attributes; each prediction in it gets two child spans, ``queue``
(waiting for its batch) and ``inference`` (its batch in the model). Spans go over OTLP/HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) when one is set; the
provider is ``tracing.provider``, so a test can add an in-memory exporter to it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelport.core.context import RequestInfo
from modelport.core.observe import Timing
from modelport.errors import MissingExtra
from modelport.hints import pip_extra
from modelport.settings import Settings

try:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtra(f"tracing needs OpenTelemetry: {pip_extra('otel')}") from exc

__all__ = ["Tracing"]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(slots=True)
class RequestSpan:
    """The open span of one request; :meth:`finish` names it once the route is known."""

    span: Span
    method: str
    tracer: Tracer

    def finish(self, endpoint: str, status: int, info: RequestInfo | None = None) -> None:
        """Name the span, and add the prediction's queue and inference spans (from its result)."""
        self.span.update_name(f"{self.method} {endpoint}")
        self.span.set_attribute("http.route", endpoint)
        self.span.set_attribute("http.response.status_code", status)
        if info is not None:
            if info.result is not None and info.result.timing is not None:
                _prediction(self.tracer, info.result.timing)
            self.span.set_attribute("modelport.request_id", info.request_id)
            for key in ("model", "version", "variant"):
                value = getattr(info, key)
                if value is not None:
                    self.span.set_attribute(f"modelport.{key}", value)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))


def _prediction(tracer: Tracer, timing: Timing) -> None:
    """Queue and inference child spans of the current request's prediction."""
    attributes: dict[str, Any] = {
        "modelport.model": timing.model,
        "modelport.version": timing.version,
    }
    for name, start, end in (
        ("queue", timing.queued, timing.started),
        ("inference", timing.started, timing.finished),
    ):
        span = tracer.start_span(
            name,
            start_time=_wall_ns(start),
            attributes=attributes,
        )
        span.end(end_time=_wall_ns(end))


@functools.cache
def _offset_ns() -> int:
    """Epoch ns minus perf_counter ns, taken once, so every span's times line up."""
    return time.time_ns() - int(time.perf_counter() * 1e9)


def _wall_ns(perf: float) -> int:
    """A :func:`time.perf_counter` reading as epoch nanoseconds."""
    return _offset_ns() + int(perf * 1e9)


class Tracing:
    """A span per request and queue/inference child spans per prediction."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("modelport")

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing:
        provider = TracerProvider(resource=Resource.create({"service.name": settings.title}))
        if any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    @contextlib.contextmanager
    def request(self, scope: Mapping[str, Any], started: float) -> Iterator[RequestSpan]:
        """The request's span, from its arrival (``started``, perf_counter seconds)."""
        method = scope["method"]
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": scope["path"]}
        start = _wall_ns(started)
        with self.tracer.start_as_current_span(
            method, kind=SpanKind.SERVER, attributes=attributes, start_time=start
        ) as span:
            yield RequestSpan(span, method, self.tracer)

    def shutdown(self) -> None:
        self.provider.shutdown()
