"""HTTP routes of the outcome store.

| method | path | what |
|---|---|---|
| POST | ``/feedback`` | ``{request_id, label \\| value, row?}``: the truth of a prediction |
| GET | ``/experiments/{model}`` | the A/B report (``?min_samples=30``) |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from modelport.core.validation import bounded, invalid_input
from modelport.errors import ModelNotFound, ModelportError, OutcomesUnavailable
from modelport.outcomes.feedback import FeedbackIn, record_feedback
from modelport.outcomes.report import ExperimentReport, experiment_report
from modelport.outcomes.service import Outcomes
from modelport.outcomes.stats import MIN_SAMPLES
from modelport.protocols._http import error_responses, plane_of, read_body

__all__ = ["router"]

router = APIRouter(tags=["A/B test outcomes"], responses=error_responses(401, 403, 404, 422))
log = logging.getLogger("modelport.outcomes")
T = TypeVar("T")


async def _in_thread(work: Callable[[], T]) -> T:
    """Run store work off the event loop; a database failure answers 503, never 500."""
    try:
        return await anyio.to_thread.run_sync(work)
    except ModelportError:
        raise
    except Exception as exc:
        log.exception("outcome store failed")
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
    answer = await _in_thread(lambda: record_feedback(outcomes, registry, body))
    request.app.state.metrics.feedback(
        answer["model"], answer["version"], answer["variant"], answer["recorded"]
    )
    return answer


@router.get("/experiments/{model}", summary="An A/B test's report: per variant and the verdict")
async def experiment(
    request: Request, model: str, min_samples: int = Query(MIN_SAMPLES, ge=2, le=1_000_000)
) -> ExperimentReport:
    outcomes = _outcomes(request)
    store = outcomes.require()

    def build() -> ExperimentReport:
        outcomes.flush()
        return experiment_report(store, model, min_samples)

    report = await _in_thread(build)
    if not report.variants and model not in plane_of(request).registry.models:
        shown = bounded(model, 130)
        raise ModelNotFound(f"no model {shown!r} and no predictions recorded for it")
    return report
