"""What an experiment report needs from the store, computed by the database.

Per variant: the versions that served it, requests, 5xx and 4xx counts (one ``GROUP BY`` over
the model's requests, through the ``(model, ts)`` index); the 50th and 99th latency percentiles
(the two neighbouring rows at the rank numpy's linear interpolation needs, from the database's
sort of the variant's latencies, then interpolated exactly as :func:`numpy.percentile` does);
the count, mean and variance of the latencies of requests answered below 400 (the latency
guardrail; the variance in a second pass around the mean); and, over the feedback, its count,
the classifier's labelled rows and hits, the regressor's count, mean and variance of absolute
errors, and the count, mean and variance of the values sent (a classifier's business value;
read when the report's metric is ``value``), each variance in a second pass around the mean,
which keeps it accurate. What comes back is a handful of rows per variant: a report's memory
does not grow with the number of records, on SQLite and on PostgreSQL alike.

Those passes walk (and sort) every record of the model, so they serve models with up to
:data:`EXACT_ROWS` records (about 0.2 s at that size), where every number is exact. Beyond, the
traffic comes from the per-minute totals (:mod:`.rolled`): the same counts, means and
variances, and percentiles within 1 %, at a cost that depends on the number of minutes, not of
records. The feedback is always joined record by record (one row in a hundred, typically,
carries feedback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from modelport.outcomes import rollup
from modelport.outcomes.rolled import rolled, rows_of
from modelport.outcomes.stats import lerp
from modelport.outcomes.store import Store

__all__ = ["EXACT_ROWS", "VariantSummary", "Window", "summarize"]

EXACT_ROWS = 100_000  # a model's records walked one by one for a report; beyond, the totals

_TRAFFIC = (  # one pass over the model's requests
    "SELECT variant, COUNT(*),"
    " SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN status >= 400 AND status < 500 THEN 1 ELSE 0 END),"
    " MIN(version), MAX(version), MIN(kind), MAX(kind),"
    " SUM(CASE WHEN status < 400 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN status < 400 THEN latency_ms END)"
    " FROM mp_requests WHERE model = ?{window} GROUP BY variant"
)
_VERSIONS = "SELECT DISTINCT version FROM mp_requests WHERE model = ? AND variant = ?{window}"
_RANKED = (
    "SELECT latency_ms FROM mp_requests WHERE model = ? AND variant = ?{window}"
    " ORDER BY latency_ms LIMIT 2 OFFSET ?"
)
_LATENCY_SQUARES = (  # the guardrail's variance, around the mean (accurate), answered requests
    "SELECT SUM((latency_ms - ?) * (latency_ms - ?)) FROM mp_requests"
    " WHERE model = ? AND variant = ? AND status < 400{window}"
)
_JOINED = (  # from the feedback (SQLite keeps a CROSS JOIN's order), looking up its rows
    " FROM mp_feedback f CROSS JOIN mp_predictions p CROSS JOIN mp_requests r"
    " WHERE p.request_id = f.request_id AND p.row_index = f.row_index"
    " AND r.request_id = f.request_id AND r.model = ?{window}"
)
_VALUED = "p.label IS NULL AND p.value IS NOT NULL AND f.value IS NOT NULL"
_FEEDBACK = (
    "SELECT r.variant, COUNT(*), SUM(CASE WHEN f.label IS NOT NULL THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN p.label = f.label THEN 1 ELSE 0 END),"
    f" SUM(CASE WHEN {_VALUED} THEN 1 ELSE 0 END),"
    f" SUM(CASE WHEN {_VALUED} THEN ABS(p.value - f.value) END), COUNT(f.value), SUM(f.value)"
    f"{_JOINED} GROUP BY r.variant"
)
_SQUARES = (
    "SELECT SUM((ABS(p.value - f.value) - ?) * (ABS(p.value - f.value) - ?))"
    f"{_JOINED} AND r.variant = ? AND {_VALUED}"
)
_VALUE_SQUARES = (  # the values sent: a classifier's business value, a regressor's truth
    f"SELECT SUM((f.value - ?) * (f.value - ?)){_JOINED} AND r.variant = ? AND f.value IS NOT NULL"
)


@dataclass
class VariantSummary:
    """One variant's traffic and feedback, as the report uses them."""

    versions: set[int] = field(default_factory=set)
    requests: int = 0
    errors: int = 0  # answered 5xx
    rejected: int = 0  # answered 4xx
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    answered: int = 0  # requests answered below 400: the latency guardrail's samples
    latency_ms_mean: float | None = None  # of the answered requests
    latency_ms_variance: float = 0.0  # sample variance (n - 1) of their latencies
    feedback: int = 0
    labelled: int = 0  # feedback rows with a true label (a classifier's accuracy counts them)
    hits: int = 0  # classifier rows whose predicted label was the true one
    valued: int = 0  # regressor rows with a predicted and a true value
    mean_abs_error: float | None = None
    abs_error_variance: float = 0.0  # sample variance (n - 1) of the absolute errors
    values: int = 0  # feedback rows with a value
    value_mean: float | None = None
    value_variance: float = 0.0  # sample variance (n - 1) of the values (metric ``value`` only)


Window = tuple[float, float | None]  # (started_at, stopped_at): Unix seconds, None while running


def _clause(window: Window | None, column: str) -> tuple[str, tuple[float, ...]]:
    """The ``AND`` clause keeping the requests of ``window`` (by ``ts``), and its values."""
    if window is None:
        return "", ()
    started, stopped = window
    if stopped is None:
        return f" AND {column} >= ?", (started,)
    return f" AND {column} >= ? AND {column} < ?", (started, stopped)


def summarize(
    store: Store, model: str, window: Window | None = None, metric: str | None = None
) -> tuple[dict[str, VariantSummary], str | None]:
    """Every variant of ``model`` and the report's metric: ``metric`` when given (an
    experiment's), else ``accuracy`` for classifiers, ``mae`` for regressors, ``None`` when the
    model answered both kinds or no prediction; with ``window``, only the requests (and their
    feedback) made in it."""
    variants, kinds = _traffic(store, model, window)
    if metric is None:
        kind = kinds.pop() if len(kinds) == 1 else None
        metric = {"classification": "accuracy", "regression": "mae"}.get(kind or "")
    _feedback(store, model, window, variants, metric)
    return variants, metric


def _traffic(
    store: Store, model: str, window: Window | None
) -> tuple[dict[str, VariantSummary], set[str]]:
    if rows_of(store, model) > EXACT_ROWS:
        return _rolled_traffic(store, model, window)
    clause, bounds = _clause(window, "ts")
    variants: dict[str, VariantSummary] = {}
    kinds: set[str] = set()
    for variant, requests, errors, rejected, low, high, k1, k2, answered, total in store.select(
        _TRAFFIC.format(window=clause), (model, *bounds)
    ):
        summary = variants[variant] = VariantSummary(
            requests=requests, errors=errors or 0, rejected=rejected or 0, answered=answered or 0
        )
        if summary.answered:
            summary.latency_ms_mean = float(total) / summary.answered
        if low is not None and low == high:
            summary.versions.add(low)
        elif low is not None:  # a variant served by several versions (a canary's)
            found = store.select(_VERSIONS.format(window=clause), (model, variant, *bounds))
            summary.versions.update(v for (v,) in found if v is not None)
        kinds.update(k for k in (k1, k2) if k)
    for variant, summary in variants.items():
        n = summary.requests
        summary.latency_ms_p50 = _percentile(store, model, variant, n, 50, window)
        summary.latency_ms_p99 = _percentile(store, model, variant, n, 99, window)
        _latency_variance(store, model, variant, summary, window)
    return variants, kinds


def _rolled_traffic(
    store: Store, model: str, window: Window | None
) -> tuple[dict[str, VariantSummary], set[str]]:
    """The traffic of a model with many records, from the per-minute totals."""
    variants: dict[str, VariantSummary] = {}
    kinds: set[str] = set()
    for variant, r in rolled(store, model, window).items():
        summary = variants[variant] = VariantSummary(
            versions=r.versions, requests=r.requests, errors=r.errors, rejected=r.rejected,
            answered=r.answered,
            latency_ms_p50=rollup.percentile(r.histogram, 50),
            latency_ms_p99=rollup.percentile(r.histogram, 99),
        )  # fmt: skip
        if r.answered:
            mean = summary.latency_ms_mean = r.latency_sum / r.answered
            if r.answered > 1:
                squares = max(r.latency_squares - r.latency_sum * mean, 0.0)
                summary.latency_ms_variance = squares / (r.answered - 1)
        kinds |= r.kinds
    return variants, kinds


def _latency_variance(
    store: Store, model: str, variant: str, summary: VariantSummary, window: Window | None
) -> None:
    """The sample variance of the answered requests' latencies, in a second pass (SQL)."""
    mean = summary.latency_ms_mean
    if summary.answered < 2 or mean is None:
        return
    clause, bounds = _clause(window, "ts")
    params = (mean, mean, model, variant, *bounds)
    ((squares,),) = store.select(_LATENCY_SQUARES.format(window=clause), params)
    summary.latency_ms_variance = 0.0 if squares is None else squares / (summary.answered - 1)


def _feedback(
    store: Store,
    model: str,
    window: Window | None,
    variants: dict[str, VariantSummary],
    metric: str | None,
) -> None:
    clause, bounds = _clause(window, "r.ts")
    joined = _FEEDBACK.format(window=clause)
    for row in store.select(joined, (model, *bounds)):
        variant, count, labelled, hits, valued, total, values, value_total = row
        summary = variants.setdefault(variant, VariantSummary())
        summary.feedback, summary.labelled, summary.hits = count, labelled or 0, hits or 0
        summary.valued, summary.values = valued or 0, values or 0
        if summary.valued:
            summary.mean_abs_error = total / summary.valued
        if summary.valued > 1 and summary.mean_abs_error is not None:
            mean = summary.mean_abs_error
            squares = _squares(store, _SQUARES.format(window=clause), mean, model, bounds, variant)
            summary.abs_error_variance = math.nan if squares is None else squares / (valued - 1)
        if summary.values:
            summary.value_mean = float(value_total) / summary.values
        if metric == "value" and summary.values > 1 and summary.value_mean is not None:
            sql = _VALUE_SQUARES.format(window=clause)
            squares = _squares(store, sql, summary.value_mean, model, bounds, variant)
            summary.value_variance = math.nan if squares is None else squares / (values - 1)


def _squares(
    store: Store, sql: str, mean: float, model: str, bounds: tuple[float, ...], variant: str
) -> float | None:
    """A variant's sum of squared deviations from ``mean``, by the database."""
    ((squares,),) = store.select(sql, (mean, mean, model, *bounds, variant))
    return None if squares is None else float(squares)


def _percentile(
    store: Store, model: str, variant: str, n: int, q: float, window: Window | None = None
) -> float | None:
    """numpy's linear ``q``-th percentile of the variant's ``n`` latencies, from the two rows
    around its rank; ``None`` when there are none (or retention deleted them meanwhile)."""
    if n < 1:
        return None
    rank = (n - 1) * (q / 100)
    below = math.floor(rank)
    clause, bounds = _clause(window, "ts")
    found = store.select(_RANKED.format(window=clause), (model, variant, *bounds, below))
    if not found:
        return None
    low = float(found[0][0])
    high = float(found[-1][0])
    return lerp(low, high, rank - below)
