"""The recorder: pure ASGI middleware that hands every answered prediction to the outcome store.

It sits just inside :class:`~modelport.core.context.RequestIds`, so it sees the request id and every
answer, errors and 413s included. Prediction routes on every protocol are recorded: the
tutorial's ``/predict`` family, KServe V1 ``:predict`` and V2 ``/infer``. The model and version
come from the request context (set by the data plane when it infers) or, for a request refused
before inference, from the path; the variant is the traffic policy's, or ``v<version>``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from modelport.core import context
from modelport.errors import ModelportError
from modelport.protocols import predict
from modelport.protocols._http import parse_version

if TYPE_CHECKING:
    from modelport.core.registry import Registry
    from modelport.outcomes.service import Outcomes

__all__ = ["Recorder", "prediction_target"]

_V1 = re.compile(r"/v1/models/(?P<name>[^/]+):predict")
_V2 = re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer")


def prediction_target(path: str) -> tuple[bool, str | None, int | None]:
    """Whether ``path`` is a prediction route, and the model name and version it names."""
    try:
        route = predict.match(path)
    except ModelportError:
        return False, None, None
    if route is not None:
        return True, route[1], route[2]
    found = _V1.fullmatch(path) or _V2.fullmatch(path)
    if found is None:
        return False, None, None
    version = found.groupdict().get("version")
    try:
        return True, found["name"], parse_version(version) if version else None
    except ModelportError:
        return False, None, None


class Recorder:
    def __init__(self, app: ASGIApp, outcomes: Outcomes, registry: Registry) -> None:
        self.app = app
        self.outcomes = outcomes
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = context.current()
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or info is None
            or not self.outcomes.recording
        ):
            await self.app(scope, receive, send)
            return
        is_prediction, name, version = prediction_target(scope["path"])
        if not is_prediction:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            ms = info.seconds_to_answer() * 1000  # the status and time RequestIds recorded
            self._record(info, name, version, info.answer_status(), ms)

    def _record(
        self,
        info: context.RequestInfo,
        name: str | None,
        version: int | None,
        status: int,
        ms: float,
    ) -> None:
        model = info.model or name or self.registry.default_model
        entry = self.registry.models.get(model or "")
        if model is None or entry is None:
            return  # no such model: nothing to measure
        number = info.version or version or entry.default_version
        result = info.result if status < 400 else None
        variant = info.variant or f"v{number}"
        started = info.started
        self.outcomes.record(info.request_id, started, model, number, variant, ms, status, result)
