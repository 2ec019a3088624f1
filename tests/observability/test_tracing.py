"""OpenTelemetry: a span per request with queue and inference children (in-memory exporter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.helpers import IRIS_ROW


def test_a_request_span_with_queue_and_inference_children(make_client, repo: Path) -> None:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    with make_client(repo, tracing=True) as client:
        client.app.state.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
        reply = client.post("/models/iris/predict", json=IRIS_ROW, headers={"X-Request-Id": "t-1"})
        assert reply.status_code == 200
        client.get("/no/such/route")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"POST /models/{name}/predict", "queue", "inference", "GET <unmatched>"}
    request = spans["POST /models/{name}/predict"]
    assert request.kind is SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["modelport.request_id"] == "t-1"
    assert request.attributes["modelport.model"] == "iris"
    assert request.attributes["http.response.status_code"] == 200
    for child in ("queue", "inference"):
        span = spans[child]
        assert span.parent is not None
        assert span.parent.span_id == request.context.span_id
        assert span.start_time is not None
        assert request.start_time is not None
        assert request.start_time <= span.start_time <= span.end_time <= request.end_time  # type: ignore[operator]
    assert spans["queue"].end_time == spans["inference"].start_time


def test_tracing_is_off_by_default(make_client, repo: Path) -> None:  # type: ignore[no-untyped-def]
    with make_client(repo) as client:
        assert client.app.state.tracing is None


def test_without_the_extra_tracing_gives_a_one_line_hint(repo: Path) -> None:
    code = (
        "import sys\n"
        "from modelport import create_app, Settings, ModelportError\n"
        "sys.modules['opentelemetry.sdk'] = None  # the extra's package, as if not installed\n"
        "try:\n"
        f"    create_app(Settings(models={str(repo)!r}, tracing=True))\n"
        "except ModelportError as exc:\n"
        "    print(exc.code, exc.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "missing_extra tracing needs OpenTelemetry: pip install 'modelport[otel]'"
    )


def test_a_tracer_provider_set_elsewhere_adds_no_spans_of_fastapis_own(repo: Path) -> None:
    """A process-wide tracer provider (set up by the user's own OpenTelemetry code) does not
    switch on FastAPI's own instrumentation: modelport's tracing (off here) is the only one, so
    no request gets a second span."""
    code = (
        "from fastapi.testclient import TestClient\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from modelport import create_app, Settings\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        f"settings = Settings(models={str(repo)!r}, outcomes=False)\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    assert client.get('/health').status_code == 200\n"
        f"    body = {IRIS_ROW!r}\n"
        "    assert client.post('/models/iris/predict', json=body).status_code == 200\n"
        "print(sorted(s.name for s in exporter.get_finished_spans()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
