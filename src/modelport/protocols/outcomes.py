"""HTTP routes of the outcome store.

| method | path | what |
|---|---|---|
| POST | ``/feedback`` | ``{request_id, label \\| value, row?}``: the truth of a prediction |
| GET | ``/experiments/{model}`` | the A/B report (``?min_samples=30``) |
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from modelport.core.validation import invalid_input
from modelport.errors import ModelNotFound, ModelportError, OutcomesUnavailable
from modelport.outcomes.feedback import FeedbackIn, record_feedback
from modelport.outcomes.health import error_kind
from modelport.outcomes.report import ExperimentReport
from modelport.outcomes.service import Outcomes
from modelport.outcomes.stats import MIN_SAMPLES
from modelport.protocols._http import plane_of, read_body

__all__ = ["router"]

router = APIRouter(tags=["A/B test outcomes"])
log = logging.getLogger("modelport.outcomes")
T = TypeVar("T")


async def _in_thread(outcomes: Outcomes, work: Callable[[], Awaitable[T]]) -> T:
    """Run store work; a database failure answers 503, never 500, and is logged at most once a
    minute per kind (a failing store must not let callers flood the log)."""
    try:
        return await work()
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


@router.post(
    "/feedback",
    summary="Record the true label or value of an answered prediction",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FeedbackIn.model_json_schema()}},
        }
    },
)
async def feedback(request: Request) -> dict[str, Any]:
    try:
        body = FeedbackIn.model_validate_json(await read_body(request))
    except ValidationError as exc:
        raise invalid_input(exc) from exc
    registry = plane_of(request).registry
    outcomes = _outcomes(request)
    answer = await _in_thread(
        outcomes, lambda: anyio.to_thread.run_sync(record_feedback, outcomes, registry, body)
    )
    request.app.state.metrics.feedback(
        answer["model"], answer["version"], answer["variant"], answer["recorded"]
    )
    return answer


@router.get("/experiments/{model}", summary="An A/B test's report: per variant and the verdict")
async def experiment(
    request: Request, model: str, min_samples: int = Query(MIN_SAMPLES, ge=2, le=1_000_000)
) -> ExperimentReport:
    outcomes = _outcomes(request)
    report = await _in_thread(outcomes, lambda: outcomes.report(model, min_samples))
    if not report.variants and model not in plane_of(request).registry.models:
        raise ModelNotFound(f"no model {model!r} and no predictions recorded for it")
    return report
