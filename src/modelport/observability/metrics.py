"""Prometheus metrics on modelport's own ``CollectorRegistry``, right with several workers.

| metric | type | labels | meaning |
|---|---|---|---|
| ``modelport_requests_total`` | counter | protocol, endpoint, method, code, model, version, variant | answered HTTP requests |
| ``modelport_request_duration_seconds`` | histogram | protocol, endpoint, model, version, variant | request to answer |
| ``modelport_requests_in_flight`` | gauge | | requests being served now |
| ``modelport_queue_wait_seconds`` | histogram | model, version | time a prediction waited for its batch |
| ``modelport_inference_duration_seconds`` | histogram | model, version | time its batch spent in the model |
| ``modelport_batch_size`` | histogram | model, version | rows per batch sent to the model |
| ``modelport_queue_depth`` | gauge | model, version | predictions waiting (the fullest worker's) |
| ``modelport_queue_capacity`` | gauge | model, version | queue size past which requests get 503 |
| ``modelport_model_ready`` | gauge | model, version | 1 when the version serves, else 0 |
| ``modelport_model_load_duration_seconds`` | gauge | model, version | how long the version took to load |
| ``modelport_model_load_failures`` | gauge | model | versions that failed to load |
| ``modelport_models_loaded`` | gauge | | model versions ready to serve |
| ``modelport_feedback_total`` | counter | model, version, variant, recorded | feedback received (``new`` or ``replaced``) |
| ``modelport_outcomes_dropped_total`` | counter | reason | prediction records not stored: ``queue_full``, ``store_error``, ``unconvertible`` |
| ``modelport_outcomes_recording`` | gauge | | 1 while recording works (the lowest of the workers), 0 while the store fails or could not be opened |
| ``modelport_registry_polls_total`` | counter | model, result | checks of an MLflow alias (``ok`` or ``failed``) |

``endpoint`` is the route template (``/v2/models/{model_name}/infer``), never the raw path;
unknown paths are ``<unmatched>``. ``variant`` is the traffic variant (``""`` when none).

Request and batch metrics are tallied as plain numbers on the event loop and handed to
prometheus_client once per loop iteration, before the next request is read
(:mod:`modelport.observability.tally`): a request pays for a few additions, not for six locked
updates, and no scrape misses an answered request.

With ``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client`` was first imported
(:mod:`modelport.observability.multiproc` does that for gunicorn), request metrics live in per-process files
and a scrape of any worker reports the sum over all workers; the model state is read from the
scraped worker's registry (every worker preloads the same models), and process memory and CPU are
summed over the server's processes. Import this module only after that choice is made.
"""  # noqa: E501

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from modelport.core.context import RequestInfo
from modelport.core.observe import Observer
from modelport.core.registry import ModelState, Registry
from modelport.observability import multiproc
from modelport.observability.tally import Counted, Level, Observed, Tally
from modelport.observability.workerfiles import WorkerFiles

__all__ = ["CONTENT_TYPE", "Metrics", "multiprocess_dir"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (
    *(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 30.0),
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
REQUEST_LABELS = ("protocol", "endpoint", "method", "code", "model", "version", "variant")
LATENCY_LABELS = ("protocol", "endpoint", "model", "version", "variant")
MODEL_LABELS = ("model", "version")
OUTCOME_DROP_REASONS = ("queue_full", "store_error", "unconvertible")  # outcomes.health.REASONS
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> Path | None:
    """The multiprocess directory, when ``prometheus_client`` runs in multiprocess mode."""
    from prometheus_client import values

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and values.ValueClass is not values.MutexValue:
        return Path(directory)
    return None


class Metrics(Observer):
    """Every modelport metric; :meth:`exposition` renders them for a scrape."""

    content_type = CONTENT_TYPE.encode()

    def __init__(self, registry: Registry) -> None:
        self.directory = multiprocess_dir()
        own = None if self.directory else CollectorRegistry()
        self.requests = Counter(
            "modelport_requests_total", "Answered HTTP requests.", REQUEST_LABELS, registry=own
        )
        self.latency = Histogram(
            "modelport_request_duration_seconds",
            "Seconds from a request's arrival to its answer.",
            LATENCY_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.in_flight = Gauge(
            "modelport_requests_in_flight",
            "Requests being served now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.feedback_count = Counter(
            "modelport_feedback_total",
            "Feedback received on answered predictions (recorded: new or replaced).",
            ("model", "version", "variant", "recorded"),
            registry=own,
        )
        self.registry_polls = Counter(
            "modelport_registry_polls_total",
            "Checks of an MLflow registry alias (result: ok or failed).",
            ("model", "result"),
            registry=own,
        )
        self._model_metrics(own)
        self._outcome_metrics(own)
        # request and batch metrics are tallied on the loop and flushed in bulk (:mod:`.tally`)
        self.tally = Tally()
        self._in_flight = Level(self.tally, self.in_flight)
        self._request_children: dict[tuple[object, ...], tuple[Counted, Observed]] = {}
        self._latency_children: dict[tuple[str, ...], Observed] = {}
        self._model_children: dict[tuple[str, int], _ModelChildren] = {}
        self.exposition_registry = own or CollectorRegistry()
        self.exposition_registry.register(ModelStates(registry))
        if self.directory is not None:
            WorkerFiles(  # type: ignore[no-untyped-call]
                self.exposition_registry, str(self.directory)
            )
            self.exposition_registry.register(ServerProcesses(self.directory))
        else:
            ProcessCollector(registry=self.exposition_registry)

    def _model_metrics(self, own: CollectorRegistry | None) -> None:
        self.queue_wait = Histogram(
            "modelport_queue_wait_seconds",
            "Seconds a prediction waited in its model's queue before its batch started.",
            MODEL_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.inference = Histogram(
            "modelport_inference_duration_seconds",
            "Seconds a prediction's batch spent in the model.",
            MODEL_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.batch_size = Histogram(
            "modelport_batch_size",
            "Rows per batch sent to the model.",
            MODEL_LABELS,
            buckets=BATCH_BUCKETS,
            registry=own,
        )
        self.queue_depth = Gauge(
            "modelport_queue_depth",
            "Predictions waiting in the model's queue (the fullest worker's, with several).",
            MODEL_LABELS,
            registry=own,
            multiprocess_mode="livemax",
        )

    def _outcome_metrics(self, own: CollectorRegistry | None) -> None:
        self.outcomes_dropped_count = Counter(
            "modelport_outcomes_dropped_total",
            "Prediction records the outcome store did not keep, by reason.",
            ("reason",),
            registry=own,
        )
        self.outcomes_recording_state = Gauge(
            "modelport_outcomes_recording",
            "1 while predictions are recorded, 0 while the outcome store fails (lowest worker).",
            registry=own,
            multiprocess_mode="livemin",
        )
        for reason in OUTCOME_DROP_REASONS:  # every reason shows from the start, at 0
            self.outcomes_dropped_count.labels(reason)

    def outcomes_dropped(self, reason: str, count: int) -> None:
        """Count records the outcome store did not keep (called from its writer thread)."""
        self.outcomes_dropped_count.labels(reason).inc(count)

    def outcomes_recording(self, recording: bool) -> None:
        self.outcomes_recording_state.set(1 if recording else 0)

    def registry_poll(self, model: str, ok: bool) -> None:
        self.registry_polls.labels(model, "ok" if ok else "failed").inc()

    def feedback(self, model: str, version: int | None, variant: str | None, recorded: str) -> None:
        """Count one stored feedback."""
        version_label = "" if version is None else str(version)
        self.feedback_count.labels(model, version_label, variant or "", recorded).inc()

    def arrived(self) -> None:
        """A request is being served."""
        self._in_flight.add(1)

    def left(self) -> None:
        """A request was answered."""
        self._in_flight.add(-1)

    def flush(self) -> None:
        """Hand what the loop tallied to prometheus_client now (a scrape, a live reading)."""
        self.tally.flush()

    def exposition(self) -> bytes:
        self.tally.flush()
        if self.directory is not None:
            multiproc.reap(self.directory)
        return generate_latest(self.exposition_registry)

    def request(
        self,
        protocol: str,
        endpoint: str,
        method: str,
        status: int,
        seconds: float,
        info: RequestInfo | None = None,
    ) -> None:
        """Count one answered request, with the model, version and variant that served it."""
        served = (None, None, None) if info is None else (info.model, info.version, info.variant)
        key = (protocol, endpoint, method, status, *served)
        children = self._request_children.get(key)
        if children is None:  # labels() costs microseconds; label sets are few: keep them
            children = self._request_children[key] = self._new_request(key)
        children[0].add()
        children[1].add(seconds)

    def _new_request(self, key: tuple[object, ...]) -> tuple[Counted, Observed]:
        protocol, endpoint, method, status, model, version, variant = key
        number = "" if version is None else str(version)
        labels = (str(protocol), str(endpoint), str(model or ""), number, str(variant or ""))
        verb = method if method in METHODS else "other"
        counter = self.requests.labels(*labels[:2], verb, str(status), *labels[2:])
        latency = self._latency_children.get(labels)  # one child per label set, one tally
        if latency is None:
            latency = Observed(self.tally, self.latency.labels(*labels))
            self._latency_children[labels] = latency
        return Counted(self.tally, counter), latency

    def _model(self, model: str, version: int) -> _ModelChildren:
        children = self._model_children.get((model, version))
        if children is None:
            labels = (model, str(version))
            children = _ModelChildren(
                Level(self.tally, self.queue_depth.labels(*labels)),
                Observed(self.tally, self.batch_size.labels(*labels)),
                Observed(self.tally, self.queue_wait.labels(*labels)),
                Observed(self.tally, self.inference.labels(*labels)),
            )
            self._model_children[model, version] = children
        return children

    def batch(
        self, model: str, version: int, rows: int, depth: int, inference: float, waits: list[float]
    ) -> None:
        children = self._model(model, version)
        children.batch_size.add(rows)
        children.queue_depth.set(depth)
        children.inference.add(inference, len(waits))  # each prediction's batch time
        queue_wait = children.queue_wait
        for waited in waits:
            queue_wait.add(waited)


@dataclass(frozen=True, slots=True)
class _ModelChildren:
    queue_depth: Level
    batch_size: Observed
    queue_wait: Observed
    inference: Observed


class ModelStates(Collector):
    """The registry's model state, read at scrape time (the same in every preloaded worker)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        ready = GaugeMetricFamily(
            "modelport_model_ready", "1 when the model version serves, else 0.", labels=MODEL_LABELS
        )
        load = GaugeMetricFamily(
            "modelport_model_load_duration_seconds",
            "Seconds the model version took to load.",
            labels=MODEL_LABELS,
        )
        capacity = GaugeMetricFamily(
            "modelport_queue_capacity",
            "Predictions the model's queue holds before answering 503 (per worker).",
            labels=MODEL_LABELS,
        )
        failures = GaugeMetricFamily(
            "modelport_model_load_failures", "Versions that failed to load.", labels=["model"]
        )
        loaded = 0
        for model in list(self.registry.models.values()):
            failed = 0
            for number, mv in list(model.versions.items()):
                is_ready = mv.state is ModelState.READY
                loaded += is_ready
                failed += mv.state is ModelState.FAILED
                ready.add_metric([model.name, str(number)], float(is_ready))
                if mv.load_seconds is not None:
                    load.add_metric([model.name, str(number)], mv.load_seconds)
                if mv.card.batching.enabled:
                    capacity.add_metric([model.name, str(number)], mv.card.batching.max_queue)
            failures.add_metric([model.name], failed)
        yield from (ready, load, capacity, failures)
        yield GaugeMetricFamily(
            "modelport_models_loaded", "Model versions ready to serve.", value=loaded
        )


def _server_pids(directory: Path) -> list[int]:
    """The gunicorn master that prepared ``directory`` and every child of it (the workers)."""
    master = multiproc.master_pid(directory) or os.getpid()
    children: list[int] = []
    for task in Path(f"/proc/{master}/task").glob("*/children"):
        try:
            children.extend(int(pid) for pid in task.read_text().split())
        except OSError:
            continue
    return [master, *children] if children else [os.getpid()]


class ServerProcesses(Collector):
    """Resident memory and CPU time summed over the master and its workers (Linux ``/proc``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        sums: dict[str, float] = {}
        for pid in _server_pids(self.directory):
            collector = ProcessCollector(pid=functools.partial(int, pid), registry=None)
            for family in collector.collect():
                if family.name in ("process_resident_memory_bytes", "process_cpu_seconds"):
                    for sample in family.samples:
                        sums[family.name] = sums.get(family.name, 0.0) + sample.value
        memory = GaugeMetricFamily(
            "process_resident_memory_bytes",
            "Resident memory of the server's processes in bytes.",
            value=sums.get("process_resident_memory_bytes", 0.0),
        )
        cpu = CounterMetricFamily(
            "process_cpu_seconds",
            "CPU seconds used by the server's processes.",
            value=sums.get("process_cpu_seconds", 0.0),
        )
        yield from (memory, cpu)
