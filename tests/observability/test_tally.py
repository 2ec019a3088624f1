"""Request metrics tallied on the loop: the same numbers as prometheus_client's own updates, in
prometheus_client before the loop reads another request."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelport.core.context import RequestInfo
from modelport.core.registry import Registry
from modelport.observability.metrics import LATENCY_BUCKETS, Metrics
from modelport.observability.tally import Observed, Tally
from tests.observability.test_metrics import samples, total

# on a bound, between bounds, below the first, past the last, zero, negative, repeated
VALUES = [0.0005, 0.0007, 0.001, 0.0001, 45.0, 0.0, -1.0, 0.3, 0.3, 2.5, 10.0, 0.02]


def _values(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Each sample by name and ``le``, but the creation time (a float sum rounded to 9 digits:
    adding a flush's sum differs from adding each value in the last bit)."""
    text = generate_latest(registry).decode()
    return {
        (s.name, s.labels.get("le", "")): round(s.value, 9)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_bulk_observations_equal_one_observe_each() -> None:
    mine, theirs = CollectorRegistry(), CollectorRegistry()
    tallied = Histogram("h", "h", ["model"], buckets=LATENCY_BUCKETS, registry=mine)
    observed = Histogram("h", "h", ["model"], buckets=LATENCY_BUCKETS, registry=theirs)
    tally = Tally()
    pending = Observed(tally, tallied.labels("iris"))
    for flushes in range(3):  # totals carry over flushes
        for value in VALUES:
            pending.add(value)
            observed.labels("iris").observe(value)
        pending.add(0.004, times=3)
        for _ in range(3):
            observed.labels("iris").observe(0.004)
        tally.flush()
        assert _values(mine) == _values(theirs), flushes
    text = generate_latest(mine).decode()
    assert samples(text, "h_count") == [3 * (len(VALUES) + 3)]
    assert samples(text, "h_bucket", le="0.001") == [3 * 6]  # 0.0005 0.0007 0.001 1e-4 0 -1


def test_outside_a_loop_each_change_reaches_prometheus_at_once() -> None:
    metrics = Metrics(Registry([]))
    metrics.request("tutorial", "/predict", "POST", 200, 0.01, RequestInfo("a", model="iris"))
    counted = total(
        generate_latest(metrics.exposition_registry).decode(), "modelport_requests_total"
    )
    assert counted == 1


def test_on_a_loop_one_flush_per_iteration_before_the_next() -> None:
    metrics = Metrics(Registry([]))
    registry = metrics.exposition_registry

    def counted(name: str) -> float:  # what another thread (the metrics port) would read
        return total(generate_latest(registry).decode(), name)

    async def serve() -> None:
        info = RequestInfo("a", model="iris", version=1, variant="")
        metrics.arrived()
        metrics.arrived()
        metrics.request("tutorial", "/predict", "POST", 200, 0.01, info)
        metrics.left()
        metrics.batch("iris", 1, 8, 3, 0.001, [0.002, 0.003])
        assert counted("modelport_requests_total") == 0  # tallied, not flushed yet
        assert counted("modelport_requests_in_flight") == 0
        await asyncio.sleep(0)  # one turn of the loop: the flush ran
        assert counted("modelport_requests_total") == 1
        assert counted("modelport_requests_in_flight") == 1
        assert counted("modelport_batch_size_sum") == 8
        assert counted("modelport_queue_depth") == 3
        assert counted("modelport_queue_wait_seconds_count") == 2
        assert counted("modelport_inference_duration_seconds_count") == 2  # per prediction
        assert round(counted("modelport_inference_duration_seconds_sum"), 9) == 0.002
        metrics.request("tutorial", "/predict", "POST", 200, 0.02, info)
        metrics.left()
        text = metrics.exposition().decode()  # a scrape on the loop flushes first
        assert total(text, "modelport_requests_total") == 2
        assert total(text, "modelport_requests_in_flight") == 0
        assert round(total(text, "modelport_request_duration_seconds_sum"), 9) == 0.03

    asyncio.run(serve())


def test_two_label_sets_of_one_latency_child_share_its_tally() -> None:
    metrics = Metrics(Registry([]))
    info = RequestInfo("a", model="iris", version=1, variant="")
    for status in (200, 200, 422, 503):  # three counter children, one latency child
        metrics.request("tutorial", "/predict", "POST", status, 0.01, info)
    text = metrics.exposition().decode()
    assert samples(text, "modelport_requests_total", code="200") == [2]
    assert samples(text, "modelport_request_duration_seconds_count", model="iris") == [4]
