"""HTTP routes of the outcome store.

| method | path | what | key (when inference keys are set) |
|---|---|---|---|
| POST | ``/feedback`` | ``{request_id, label?, value?, row?}``: truth, value | an inference key |
| GET | ``/experiments/{model}`` | report (``?experiment=``, ``?min_samples=``) | inference, admin |
| GET | ``/experiments/{model}/{name}`` | the report of experiment ``name`` | inference, admin |

The report without ``experiment`` covers the model's running experiment, or everything recorded
when none runs; past experiments stay readable by name (their window: start to stop).

Feedback is matched in the caller's scope (the inference key it presents): nobody can give
feedback on, or claim, another key's request ids (:mod:`.auth`). Store work runs in the outcome
service's own threads, never in the pool predictions use, and feedback in progress is bounded
(:mod:`modelport.outcomes.service`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError

from modelport.core.validation import bounded, invalid_input
from modelport.errors import ModelNotFound, ModelportError, OutcomesUnavailable
from modelport.outcomes.feedback import FeedbackIn, record_feedback
from modelport.outcomes.health import error_kind
from modelport.outcomes.report import ExperimentReport
from modelport.outcomes.service import Outcomes
from modelport.outcomes.stats import MIN_SAMPLES
from modelport.protocols._http import error_responses, plane_of, read_body, require_reader
from modelport.protocols.auth import ANONYMOUS, check_inference, inference_keys

__all__ = ["router"]

router = APIRouter(tags=["A/B test outcomes"], responses=error_responses(401, 403, 404, 422))
log = logging.getLogger("modelport.outcomes")
T = TypeVar("T")


async def _guarded(outcomes: Outcomes, work: Awaitable[T]) -> T:
    """Run store work; a database failure answers 503, never 500, and is logged at most once a
    minute per kind (a failing store must not let callers flood the log)."""
    try:
        return await work
    except ModelportError:
        raise
    except Exception as exc:
        kind = error_kind(exc)
        outcomes.health.log(
            f"request:{kind}", logging.ERROR, "outcome store failed (%s): %s: %s",
            kind, type(exc).__name__, exc, exc_info=exc if kind == "unexpected" else None,
        )  # fmt: skip
        raise OutcomesUnavailable(f"the outcome store failed: {type(exc).__name__}: {exc}") from exc


def _outcomes(request: Request) -> Outcomes:
    outcomes: Outcomes = request.app.state.outcomes
    return outcomes


async def _caller_scope(request: Request) -> str:
    """The feedback caller's scope: its inference key's (401 without one, when keys are set)."""
    keys = inference_keys(request.app.state.settings.inference_key)
    return check_inference(request.scope["headers"], keys) if keys else ANONYMOUS


@router.post(
    "/feedback",
    summary="Record the true label or value of an answered prediction (or its business value)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FeedbackIn.model_json_schema()}},
        }
    },
)
async def feedback(request: Request, scope: str = Depends(_caller_scope)) -> dict[str, Any]:
    try:
        body = FeedbackIn.model_validate_json(await read_body(request))
    except ValidationError as exc:
        raise invalid_input(exc) from exc
    registry = plane_of(request).registry
    outcomes = _outcomes(request)
    with outcomes.feedback_slot():
        answer = await _guarded(outcomes, record_feedback(outcomes, registry, body, scope))
    metrics = request.app.state.metrics
    if metrics is not None:  # metrics may be off
        metrics.feedback(answer["model"], answer["version"], answer["variant"], answer["recorded"])
    return answer


@router.get(
    "/experiments/{model}",
    summary="An A/B test's report: per variant and the verdict",
    dependencies=[Depends(require_reader)],
)
async def experiment(
    request: Request,
    model: str,
    min_samples: int = Query(MIN_SAMPLES, ge=2, le=1_000_000),
    experiment: str | None = Query(None, max_length=64, description="A named experiment."),
) -> ExperimentReport:
    outcomes = _outcomes(request)
    report = await _guarded(outcomes, outcomes.report(model, min_samples, experiment))
    if not report.variants and model not in plane_of(request).registry.models:
        shown = bounded(model, 130)
        raise ModelNotFound(f"no model {shown!r} and no predictions recorded for it")
    return report


@router.get(
    "/experiments/{model}/{name}",
    summary="The report of one named experiment, running or past",
    dependencies=[Depends(require_reader)],
)
async def named_experiment(
    request: Request,
    model: str,
    name: str,
    min_samples: int = Query(MIN_SAMPLES, ge=2, le=1_000_000),
) -> ExperimentReport:
    return await experiment(request, model, min_samples, name)
