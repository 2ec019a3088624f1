"""Feedback: the true label (classifiers) or value (regressors) of an answered prediction.

``POST /feedback`` with ``{"request_id", "label" | "value", "row"?}``; ``row`` (default 0) picks
a row of a batch answer. Rules, each answered with ``{error, detail, code}``:

* an unknown request id, or one whose prediction was not recorded: 404 ``unknown_request``
  (after this process's writer is flushed and other processes' writers are given 1 s);
* a label for a regressor, a value for a classifier, a label that is not one of the model's
  classes, a row the answer does not have, or a request that was answered with an error: 422;
* feedback again for the same row **replaces** the earlier one (the latest truth wins) and
  answers ``"recorded": "replaced"``; the first answers ``"recorded": "new"``. Both are 200,
  and both are committed to the store before the answer is sent.
"""

from __future__ import annotations

import math
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from modelport.core.registry import Registry
from modelport.core.validation import bounded
from modelport.errors import InvalidInput, UnknownRequest
from modelport.outcomes.records import StoredRequest
from modelport.outcomes.service import Outcomes
from modelport.outcomes.store import Store

__all__ = ["OTHER_WRITERS_S", "FeedbackIn", "record_feedback"]

OTHER_WRITERS_S = 1.0  # how long an unknown id waits for other processes' writers to commit


class FeedbackIn(BaseModel):
    """The body of ``POST /feedback``: give ``label`` or ``value``, not both."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128, description="X-Request-Id answered.")
    label: StrictStr | StrictInt | StrictBool | None = Field(
        None, description="The true class (classifiers)."
    )
    value: float | None = Field(
        None, allow_inf_nan=False, description="The true value (regressors)."
    )
    row: int = Field(0, ge=0, le=2**31 - 1, description="Which row of a batch answer (default 0).")


def _found(outcomes: Outcomes, store: Store, request_id: str) -> StoredRequest:
    found = store.request(request_id)
    if found is None:  # maybe answered a moment ago and still queued for a writer
        outcomes.flush()  # this process's writer
        deadline = time.monotonic() + OTHER_WRITERS_S
        found = store.request(request_id)
        while found is None and time.monotonic() < deadline:  # another worker's or replica's
            time.sleep(0.02)
            found = store.request(request_id)
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
    if (body.label is None) == (body.value is None):
        raise InvalidInput(
            'send the true "label" (classifiers) or "value" (regressors), one of them'
        )
    if found.kind == "regression" and body.label is not None:
        raise InvalidInput(f'{model} is a regressor: send the true "value", not a "label"')
    if found.kind == "classification" and body.value is not None:
        raise InvalidInput(f'{model} is a classifier: send the true "label", not a "value"')
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


def record_feedback(outcomes: Outcomes, registry: Registry, body: FeedbackIn) -> dict[str, Any]:
    """Validate and store one feedback (blocking: call it from a worker thread)."""
    store = outcomes.require()
    found = _found(outcomes, store, body.request_id)
    _check_kind(body, found, registry)
    label = None if body.label is None else str(body.label)
    replaced = store.put_feedback(body.request_id, body.row, label, body.value)
    predicted = store.prediction(body.request_id, body.row)
    answer: dict[str, Any] = {
        "request_id": body.request_id,
        "row": body.row,
        "model": found.model,
        "version": found.version,
        "variant": found.variant,
        "recorded": "replaced" if replaced else "new",
    }
    if predicted is not None and label is not None:
        answer["correct"] = predicted[0] == label
    elif predicted is not None and predicted[1] is not None and body.value is not None:
        answer["abs_error"] = abs(predicted[1] - body.value)
        if not math.isfinite(answer["abs_error"]):
            answer["abs_error"] = None
    return answer
