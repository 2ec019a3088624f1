"""The gunicorn worker class: uvicorn's, serving with modelport's HTTP limits.

``modelport serve --workers N`` uses it with the limits of its settings; a gunicorn command of
your own names it (``-k modelport.server.worker.Worker``, which ``modelport.server.gunicorn_conf``
sets already) and the limits come from the ``MODELPORT_*`` environment.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from modelport.server.protocol import Limits, fd_room, protocol_class

__all__ = ["Worker", "worker_class"]


class Worker(UvicornWorker):  # type: ignore[misc]
    """A uvicorn worker whose HTTP protocol enforces :class:`~modelport.server.protocol.Limits`."""

    limits: ClassVar[Limits | None] = None  # None: read them from the environment

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.limits
        if limits is None:
            from modelport.settings import Settings

            settings = Settings()
            limits = Limits.from_settings(settings, fd_room(settings.max_connections))
        self.config.http = protocol_class(limits)


def worker_class(limits: Limits) -> type[Worker]:
    """:class:`Worker` with ``limits`` bound (what ``modelport serve --workers N`` runs)."""

    class Bound(Worker):
        pass

    Bound.limits = limits
    return Bound
