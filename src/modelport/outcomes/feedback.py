"""Feedback: the true label (classifiers) or value (regressors) of an answered prediction, and a
classifier's business value.

``POST /feedback`` with ``{"request_id", "label"?, "value"?, "row"?}``; ``row`` (default 0) picks
a row of a batch answer. A regressor's ``value`` is its true value; a classifier's ``value`` is
the business value of its answer (a conversion's 1 or 0, an order's revenue), sent beside the
true ``label``, after it, or instead of it, and compared between variants by an experiment whose
metric is ``value`` (:mod:`.report`). A ``value`` is a JSON number, finite, within
:data:`MAX_VALUE` either side of 0. Rules, each answered with ``{error, detail, code}``:

* feedback finds only predictions of the caller's own scope: those made with the same inference
  key (or, without inference keys, anonymous ones; :mod:`modelport.protocols.auth`);
* an unknown request id, or one whose prediction was not recorded: 404 ``unknown_request``
  (after this process's writer is flushed and other processes' writers are given 1 s), or 503
  ``outcomes_unavailable`` while this process cannot write the store (its prediction may have
  been dropped);
* a store that fails (full disk, read-only file, lost connection, a file deleted underneath):
  503 ``outcomes_unavailable``; feedback is answered 200 only once it is committed to the file
  that is still the store;
* neither a label nor a value, a label for a regressor, a label that is not one of the model's
  classes, a value that is not a finite number within :data:`MAX_VALUE` (a string, ``NaN``,
  ``1e400``), a row the answer does not have, or a request that was answered with an error: 422;
* feedback again for the same row **replaces** what it sends (the latest truth wins) and keeps
  what it does not send (a classifier's label sent now, its conversion's value later); it
  answers ``"recorded": "replaced"``, the first ``"recorded": "new"``. Both are 200, and both
  are committed to the store before the answer is sent.

The waiting never holds a thread: store work runs in the outcome service's own few threads
(:meth:`.service.Outcomes.call`), never in the pool predictions use, and the wait for other
writers sleeps on the event loop between lookups.
"""

from __future__ import annotations

import math
import time
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from modelport.core.registry import Registry
from modelport.core.validation import bounded
from modelport.errors import InvalidInput, OutcomesUnavailable, UnknownRequest
from modelport.outcomes.records import StoredRequest, scoped_id
from modelport.outcomes.service import Outcomes

__all__ = ["MAX_VALUE", "OTHER_WRITERS_S", "FeedbackIn", "record_feedback"]

OTHER_WRITERS_S = 1.0  # how long an unknown id waits for other processes' writers to commit
_POLL_S = 0.05  # between two lookups of an unknown id
MAX_VALUE = 1e15  # a value's bound either side of 0: sums of squares of millions stay finite


class FeedbackIn(BaseModel):
    """The body of ``POST /feedback``: ``label``, ``value`` or (a classifier's) both."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[!-~]+$",
        description="The X-Request-Id answered (printable ASCII, no spaces).",
    )
    label: StrictStr | StrictInt | StrictBool | None = Field(
        None, description="The true class (classifiers)."
    )
    value: StrictFloat | None = Field(
        None,
        allow_inf_nan=False,
        ge=-MAX_VALUE,
        le=MAX_VALUE,
        description="The true value (regressors); for a classifier, the business value of its "
        "answer (revenue, or 1/0 converted), compared by an experiment whose metric is value.",
    )
    row: int = Field(0, ge=0, le=2**31 - 1, description="Which row of a batch answer (default 0).")


async def _found(outcomes: Outcomes, stored_id: str, request_id: str) -> StoredRequest:
    store = outcomes.require()
    found = await outcomes.call(lambda: store.request(stored_id))
    if found is None:  # maybe answered a moment ago and still queued for a writer
        await outcomes.call(outcomes.flush)  # this process's writer
        deadline = time.monotonic() + OTHER_WRITERS_S
        found = await outcomes.call(lambda: store.request(stored_id))
        while found is None and time.monotonic() < deadline:  # another worker's or replica's
            await anyio.sleep(_POLL_S)
            found = await outcomes.call(lambda: store.request(stored_id))
    if found is None and outcomes.health.state == "failing":
        raise OutcomesUnavailable(
            f"the outcome store cannot be written ({outcomes.health.kind}): predictions are not "
            "being recorded now, so this one may never have been"
        )
    if found is None:
        raise UnknownRequest(f"no prediction recorded with request id {request_id!r}")
    if found.status >= 400:
        raise InvalidInput(
            f"request {request_id!r} was answered with HTTP {found.status}: "
            "it made no prediction to give feedback on"
        )
    return found


def _check_kind(body: FeedbackIn, found: StoredRequest, registry: Registry) -> None:
    model = f"model {found.model!r}"
    if body.label is None and body.value is None:
        raise InvalidInput(
            'send the true "label" (classifiers) or "value" (regressors; a classifier\'s '
            "business value), at least one of them"
        )
    if found.kind == "regression" and body.label is not None:
        raise InvalidInput(f'{model} is a regressor: send the true "value", not a "label"')
    if body.row >= found.rows:
        raise InvalidInput(f"row {body.row} is out of range: that answer has {found.rows} row(s)")
    entry = registry.models.get(found.model)
    served = entry.versions.get(found.version or 0) if entry else None
    signature = served.loaded.signature if served is not None and served.loaded else None
    if body.label is not None and signature is not None and signature.classes is not None:
        known = [str(signature.label(c)) for c in signature.classes]
        if str(body.label) not in known:
            label = bounded(repr(body.label), 80)
            raise InvalidInput(f"label {label} is not a class of {model}: one of {known}")


async def record_feedback(
    outcomes: Outcomes, registry: Registry, body: FeedbackIn, scope: str = ""
) -> dict[str, Any]:
    """Validate and store one feedback of a caller in ``scope`` (see the module docstring)."""
    stored_id = scoped_id(scope, body.request_id)
    found = await _found(outcomes, stored_id, body.request_id)
    _check_kind(body, found, registry)
    answer: dict[str, Any] = {
        "request_id": body.request_id,
        "row": body.row,
        "model": found.model,
        "version": found.version,
        "variant": found.variant,
    }
    answer.update(await outcomes.call(lambda: _store(outcomes, stored_id, body)))
    return answer


def _store(outcomes: Outcomes, stored_id: str, body: FeedbackIn) -> dict[str, Any]:
    """Write the feedback and compare it with the prediction (in a store thread)."""
    store = outcomes.require()
    label = None if body.label is None else str(body.label)
    replaced = store.put_feedback(stored_id, body.row, label, body.value)
    predicted = store.prediction(stored_id, body.row)
    answer: dict[str, Any] = {"recorded": "replaced" if replaced else "new"}
    if predicted is not None and label is not None:
        answer["correct"] = predicted[0] == label
    elif predicted is not None and predicted[1] is not None and body.value is not None:
        answer["abs_error"] = abs(predicted[1] - body.value)
        if not math.isfinite(answer["abs_error"]):
            answer["abs_error"] = None
    return answer
