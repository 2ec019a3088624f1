"""Pure ASGI middleware: routing state per request, and canary answers to the automatic canary."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from modelport.core import context
from modelport.traffic.router import TrafficRouter, held_versions

__all__ = ["Routing"]


class Routing:
    """Per-request routing state; releases the versions a request held when it ends and reports
    canary answers to the automatic canary. Sits inside
    :class:`~modelport.server.request_ids.RequestIds`,
    which labels answers with their variant."""

    def __init__(self, app: ASGIApp, router: TrafficRouter | None = None) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            with held_versions(scope["headers"]):
                await self.app(scope, receive, send)
        finally:
            info = context.current()
            if self.router is not None and info and info.variant == "canary" and info.model:
                elapsed_ms = info.seconds_to_answer() * 1000
                try:
                    self.router.monitor.observe(info.model, info.answer_status(), elapsed_ms)
                except Exception:  # the answer is sent: a failed canary step must not raise
                    logging.getLogger("modelport.traffic.canary").exception("canary step failed")
