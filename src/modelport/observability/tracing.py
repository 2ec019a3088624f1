"""OpenTelemetry traces (``pip install 'modelport[otel]'``, ``MODELPORT_TRACING=true``).

Each HTTP request is a server span named ``METHOD /route/template`` with the request id, model,
version, variant and status as attributes; each prediction in it gets two child spans, ``queue``
(waiting for its batch) and ``inference`` (its batch in the model). Spans go over OTLP/HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) when one is set; the
provider is ``tracing.provider``, so a test can add an in-memory exporter to it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelport.core import context
from modelport.core.observe import Observer, Timing
from modelport.errors import MissingExtra
from modelport.settings import Settings

try:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtra("tracing needs OpenTelemetry: pip install 'modelport[otel]'") from exc

__all__ = ["Tracing"]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(slots=True)
class RequestSpan:
    """The open span of one request; :meth:`finish` names it once the route is known."""

    span: Span
    method: str

    def finish(self, endpoint: str, status: int) -> None:
        self.span.update_name(f"{self.method} {endpoint}")
        self.span.set_attribute("http.route", endpoint)
        self.span.set_attribute("http.response.status_code", status)
        info = context.current()
        if info is not None:
            self.span.set_attribute("modelport.request_id", info.request_id)
            for key in ("model", "version", "variant"):
                value = getattr(info, key)
                if value is not None:
                    self.span.set_attribute(f"modelport.{key}", value)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))


def _wall_ns(perf: float, now_perf: float, now_ns: int) -> int:
    """A :func:`time.perf_counter` reading as epoch nanoseconds."""
    return now_ns - int((now_perf - perf) * 1e9)


class Tracing(Observer):
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
    def request(self, scope: Mapping[str, Any]) -> Iterator[RequestSpan]:
        method = scope["method"]
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": scope["path"]}
        with self.tracer.start_as_current_span(
            method, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            yield RequestSpan(span, method)

    def prediction(self, timing: Timing) -> None:
        now_perf, now_ns = time.perf_counter(), time.time_ns()
        attributes: dict[str, Any] = {
            "modelport.model": timing.model,
            "modelport.version": timing.version,
        }
        for name, start, end in (
            ("queue", timing.queued, timing.started),
            ("inference", timing.started, timing.finished),
        ):
            span = self.tracer.start_span(
                name, start_time=_wall_ns(start, now_perf, now_ns), attributes=attributes
            )
            span.end(end_time=_wall_ns(end, now_perf, now_ns))

    def shutdown(self) -> None:
        self.provider.shutdown()
