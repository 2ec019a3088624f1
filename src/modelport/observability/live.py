"""One model's live traffic, read from the server's own request metrics (the same counters a
Prometheus scrape reads, summed over every worker when there are several).

A reading holds running totals; the status page reads twice and divides the differences by the
time between them, so the rate and the latency are those of the last few seconds:

``{"requests", "errors", "rejected", "feedback", "latency_sum", "latency_count",
"buckets": [[le, cumulative count], ...], "variants": [{"version", "variant", "requests",
"errors", "rejected", "latency_sum", "latency_count"}, ...]}``

Nothing here runs per request: a reading walks the metric families once, when a page asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modelport.observability.workerfiles import WorkerFiles

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from modelport.observability.metrics import Metrics

__all__ = ["model_traffic"]

_REQUESTS = "modelport_requests_total"
_LATENCY = "modelport_request_duration_seconds"
_FEEDBACK = "modelport_feedback_total"
_FAMILIES = frozenset({"modelport_requests", _LATENCY, "modelport_feedback"})  # counters: no _total


def _families(metrics: Metrics) -> Iterable[Metric]:
    metrics.flush()  # what this worker tallied (the others flush every loop iteration)
    if metrics.directory is not None:  # every worker's files
        collector = WorkerFiles(None, str(metrics.directory))  # type: ignore[no-untyped-call]
        found = collector.collect()
        return [f for f in found if f.name in _FAMILIES]
    own = (metrics.requests, metrics.latency, metrics.feedback_count)
    return [family for metric in own for family in metric.collect()]


def _variant(
    table: dict[tuple[str, str], dict[str, Any]], labels: dict[str, str]
) -> dict[str, Any]:
    """The totals row of the labels' version and variant."""
    key = (labels.get("version", ""), labels.get("variant", ""))
    row = table.get(key)
    if row is None:
        row = table[key] = {
            "version": int(key[0]) if key[0].isdigit() else None,
            "variant": key[1],
            **dict.fromkeys(("requests", "errors", "rejected", "latency_count"), 0),
            "latency_sum": 0.0,
        }
    return row


def model_traffic(metrics: Metrics, model: str) -> dict[str, Any]:
    """Running totals of ``model``'s answered predictions, latency histogram and feedback."""
    variants: dict[tuple[str, str], dict[str, Any]] = {}
    buckets: dict[float, float] = {}
    feedback = 0
    for family in _families(metrics):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model:
                continue
            if sample.name == _REQUESTS:
                row = _variant(variants, labels)
                code = int(labels.get("code", "0") or 0)
                row["requests"] += int(sample.value)
                row["errors"] += int(sample.value) if code >= 500 else 0
                row["rejected"] += int(sample.value) if 400 <= code < 500 else 0
            elif sample.name == _LATENCY + "_bucket":
                le = float(labels["le"])
                if le != float("inf"):  # the +Inf bucket is latency_count (and JSON has no inf)
                    buckets[le] = buckets.get(le, 0) + sample.value
            elif sample.name in (_LATENCY + "_sum", _LATENCY + "_count"):
                field = "latency_sum" if sample.name.endswith("_sum") else "latency_count"
                _variant(variants, labels)[field] += sample.value
            elif sample.name == _FEEDBACK:
                feedback += int(sample.value)
    rows = sorted(variants.values(), key=lambda r: (r["version"] or 0, r["variant"]))
    return {
        **{k: sum(r[k] for r in rows) for k in ("requests", "errors", "rejected")},
        "feedback": feedback,
        "latency_sum": sum(r["latency_sum"] for r in rows),
        "latency_count": int(sum(r["latency_count"] for r in rows)),
        "buckets": [[le, int(count)] for le, count in sorted(buckets.items())],
        "variants": [{**r, "latency_count": int(r["latency_count"])} for r in rows],
    }
