"""Which inference result answered the current request, for the recorder.

The recorder opens a :class:`Capture` for each prediction request; :meth:`DataPlane.infer
<modelport.dataplane.DataPlane.infer>` calls :func:`note` with its result. A prediction made
under another :class:`~modelport.context.RequestInfo` (a shadow copy run inside
``context.use(...)``) is never taken for the caller's answer.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelport import context

if TYPE_CHECKING:
    from modelport.dataplane import InferenceResult

__all__ = ["Capture", "note"]


@dataclass(slots=True)
class Capture:
    info: context.RequestInfo
    result: InferenceResult | None = None


current_capture: ContextVar[Capture | None] = ContextVar("modelport_capture", default=None)


def note(result: InferenceResult) -> None:
    """Remember ``result`` as the answer of the request being recorded, if one is."""
    capture = current_capture.get()
    if capture is not None and capture.info is context.current():
        capture.result = result
