"""Running the server: uvicorn for one worker, gunicorn with uvicorn workers for more.

Both finish in-flight requests on SIGTERM before exiting (``settings.graceful_timeout``).
"""

from __future__ import annotations

from typing import Any

import uvicorn

from modelport.core.repository import is_folder_model, scan
from modelport.model.integrity import refusals
from modelport.model.pins import Pins, TrustPolicy
from modelport.observability import multiproc
from modelport.server.app import create_app, loaded_app
from modelport.server.logs import configure_logging, gunicorn_logger
from modelport.server.protocol import Limits, fd_room, protocol_class
from modelport.settings import Settings
from modelport.sources.registry import registry_refusals, trusted_paths

__all__ = ["serve"]


def _metrics_server(settings: Settings, app: Any) -> None:
    """Serve the app's metrics on ``settings.metrics_port`` from a thread of this process."""
    if settings.metrics_port is None or app.state.metrics is None:  # metrics are off
        return
    from prometheus_client import start_http_server

    start_http_server(
        settings.metrics_port, settings.host, registry=app.state.metrics.exposition_registry
    )


def _serve_uvicorn(settings: Settings, limits: Limits) -> None:
    app = create_app(settings)
    _metrics_server(settings, app)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(limits),  # uvicorn's httptools protocol with modelport's limits
        log_level=settings.log_level,
        log_config=None,  # configure_logging did it
        access_log=False,  # modelport.access logs each request, with its id and model
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        server_header=False,
    )
    uvicorn.Server(config).run()


def _serve_gunicorn(settings: Settings, limits: Limits) -> None:
    from gunicorn.app.base import BaseApplication

    from modelport.server.worker import worker_class

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{settings.host}:{settings.port}",
                "workers": settings.workers,
                "worker_class": worker_class(limits),
                "graceful_timeout": int(settings.graceful_timeout),
                "preload_app": True,
                "timeout": 120,
                "loglevel": settings.log_level,
                "accesslog": None,  # modelport.access logs each request, with its id and model
                "logger_class": gunicorn_logger(settings),
                "child_exit": multiproc.child_exit,
                "when_ready": lambda server: _metrics_server(settings, server.app.callable),
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # Runs once in the master before it forks: the workers share the loaded models'
            # memory copy-on-write instead of each loading its own copy.
            return loaded_app(settings)

    Application().run()


def serve(settings: Settings) -> None:
    """Serve the models at ``settings.models`` until SIGTERM or Ctrl-C."""
    # Fail fast, before any worker starts, on a repository that is wrong, when no model's
    # card reads, or when no model could load because no trusted pin vouches for any; one
    # refused or broken model fails alone (listed with its reason), the others serve.
    sources = scan(settings.models)
    broken = [s.error for s in sources if s.error is not None]
    if broken and len(broken) == len(sources):
        raise broken[0]
    trusted = trusted_paths(settings.trust)  # `models:/NAME` trusts that registry model
    found = [(s, p) for s in sources for v, p in s.versions.items() if v not in s.problems]
    blocked = registry_refusals(((s.card, p) for s, p in found), trusted, str(settings.models))
    artifacts = [p for s, p in found if p not in blocked and not is_folder_model(p, s.card)]
    policy = TrustPolicy(tuple(trusted), Pins.from_settings(settings))
    refused = [*blocked.values(), *refusals(artifacts, policy)]  # each fails alone at load
    if refused and len(refused) == len(found):
        raise refused[0]
    configure_logging(settings)
    limits = Limits.from_settings(settings, fd_room(settings.max_connections))
    if settings.workers > 1:
        directory, created = multiproc.prepare()  # before prometheus_client is imported
        try:
            _serve_gunicorn(settings, limits)
        finally:
            multiproc.cleanup(directory, created)
    else:
        _serve_uvicorn(settings, limits)
