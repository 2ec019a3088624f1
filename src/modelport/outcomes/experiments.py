"""Experiments as objects: a named A/B test of one model, with a start, a stop, the traffic policy
it runs under, its metric, and the traffic changes made while it ran.

Kept in the outcome store's ``mp_experiments`` table (SQLite and PostgreSQL alike), so every
worker and the CLI see the same experiments; at most one runs per model at a time (a partial
unique index). Nothing here touches the prediction path: requests are recorded as before, and a
report applies an experiment's window (``started_at <= ts < stopped_at``) when it is computed.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from modelport.errors import Conflict, PageNotFound
from modelport.model.policy import TrafficPolicy
from modelport.outcomes.store import Store

__all__ = [
    "Experiment",
    "ExperimentIn",
    "add_event",
    "change_warning",
    "find",
    "listed",
    "resolve",
    "running",
    "start",
    "stop",
]

Metric = Literal["accuracy", "mae", "value"]
_COLUMNS = "model, name, started_at, stopped_at, metric, traffic, events"
_INSERT = (
    f"INSERT INTO mp_experiments ({_COLUMNS}) VALUES (?, ?, ?, NULL, ?, ?, '[]')"
    " ON CONFLICT DO NOTHING"
)
_SELECT = f"SELECT {_COLUMNS} FROM mp_experiments"
_TRIES = 100  # compare-and-swap rounds of one event (each lost round is another's success)


class ExperimentIn(BaseModel):
    """What starts an experiment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Unique per model.")
    traffic: TrafficPolicy | None = Field(
        None, description="The split to run (set as the model's policy); default: the current one."
    )
    metric: Metric | None = Field(
        None,
        description="accuracy, mae, or value (the mean value sent with /feedback: a "
        "classifier's business value, higher is better); default: accuracy for classifiers, "
        "mae for regressors.",
    )


class Experiment(BaseModel):
    model: str
    name: str
    started_at: float  # Unix seconds
    stopped_at: float | None  # None while it runs
    metric: Metric | None
    traffic: TrafficPolicy | None
    events: list[dict[str, Any]]  # traffic changes while it ran: {ts, change, ...}

    @property
    def running(self) -> bool:
        return self.stopped_at is None


def _experiment(row: tuple[Any, ...]) -> Experiment:
    model, name, started, stopped, metric, traffic, events = row
    return Experiment(
        model=model, name=name, started_at=started, stopped_at=stopped, metric=metric,
        traffic=None if traffic is None else TrafficPolicy.model_validate_json(traffic),
        events=orjson.loads(events),
    )  # fmt: skip


def find(store: Store, model: str, name: str) -> Experiment | None:
    found = store.select(f"{_SELECT} WHERE model = ? AND name = ?", (model, name))
    return _experiment(found[0]) if found else None


def resolve(store: Store, model: str, name: str | None) -> Experiment | None:
    """The experiment a report covers: ``name`` (404 when there is none of that name), else the
    running one, else ``None`` (everything recorded)."""
    if name is None:
        return running(store, model)
    found = find(store, model, name)
    if found is None:
        raise PageNotFound(f"no experiment {name!r} of {model!r}")
    return found


def running(store: Store, model: str) -> Experiment | None:
    found = store.select(f"{_SELECT} WHERE model = ? AND stopped_at IS NULL", (model,))
    return _experiment(found[0]) if found else None


def listed(store: Store, model: str | None = None) -> list[Experiment]:
    """Every experiment (of ``model``), the newest first."""
    where, params = (" WHERE model = ?", (model,)) if model else ("", ())
    rows = store.select(f"{_SELECT}{where} ORDER BY started_at DESC, name", params)
    return [_experiment(row) for row in rows]


def start(store: Store, model: str, spec: ExperimentIn, now: float | None = None) -> Experiment:
    """Record a new running experiment of ``model``; 409 when one runs or the name is taken."""
    traffic = None if spec.traffic is None else spec.traffic.model_dump_json(exclude_none=True)
    started = time.time() if now is None else now
    if store.execute(_INSERT, (model, spec.name, started, spec.metric, traffic)) == 1:
        return Experiment(
            model=model, name=spec.name, started_at=started, stopped_at=None,
            metric=spec.metric, traffic=spec.traffic, events=[],
        )  # fmt: skip
    if find(store, model, spec.name) is not None:
        raise Conflict(f"{model!r} already had an experiment named {spec.name!r}: pick another")
    current = running(store, model)
    shown = current.name if current else "another"
    raise Conflict(f"experiment {shown!r} of {model!r} is running: stop it first")


def stop(store: Store, model: str, name: str | None = None, now: float | None = None) -> Experiment:
    """Stop the running experiment of ``model`` (``name``: only if it is that one); 404 when none
    runs, 409 when ``name`` has stopped already."""
    current = running(store, model)
    if current is None or (name is not None and current.name != name):
        old = find(store, model, name) if name is not None else None
        if old is not None:
            raise Conflict(f"experiment {name!r} of {model!r} was stopped already")
        raise PageNotFound(f"no running experiment{f' {name!r}' if name else ''} of {model!r}")
    stopped = time.time() if now is None else now
    store.execute(
        "UPDATE mp_experiments SET stopped_at = ? WHERE model = ? AND name = ? AND"
        " stopped_at IS NULL",
        (stopped, model, current.name),
    )
    return current.model_copy(update={"stopped_at": stopped})


def change_warning(experiment: str, model: str, change: str) -> str:
    """What a traffic change made while ``experiment`` runs answers (or prints) as a warning."""
    return (
        f"experiment {experiment!r} of {model!r} is running: this {change} changes the traffic "
        "it measures (noted in its events); its comparison may no longer be fair"
    )


def add_event(store: Store, model: str, change: str, **details: Any) -> Experiment | None:
    """Note a traffic change in the running experiment of ``model``; the experiment, or
    ``None`` when none runs. Two notes at once (two workers, the CLI and a server) both stay:
    the events are replaced only if they are still the ones read (compare and swap), and read
    again otherwise."""
    event = {"ts": time.time(), "change": change, **details}
    for _ in range(_TRIES):
        current = running(store, model)
        if current is None:
            return None
        seen = store.select(
            "SELECT events FROM mp_experiments WHERE model = ? AND name = ?", (model, current.name)
        )
        if not seen:
            continue  # deleted meanwhile
        events = [*orjson.loads(seen[0][0]), event]
        if store.execute(
            "UPDATE mp_experiments SET events = ? WHERE model = ? AND name = ? AND events = ?"
            " AND stopped_at IS NULL",
            (orjson.dumps(events).decode(), model, current.name, seen[0][0]),
        ):
            return current.model_copy(update={"events": events})
    raise Conflict(f"experiment of {model!r}: too many concurrent changes, try again")
