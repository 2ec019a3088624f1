"""gunicorn settings for serving ``modelport.asgi:app`` with a gunicorn command of your own::

    gunicorn -c python:modelport.server.gunicorn_conf modelport.asgi:app -w 2 \\
        --bind 0.0.0.0:$PORT

gunicorn runs a config module in its master before it loads the app or forks, which is what
makes metrics right across workers: importing this module prepares the run's metrics folder
before ``prometheus_client`` is imported (see :mod:`modelport.observability.multiproc`), sets up
logging from
``MODELPORT_*`` settings, and gives gunicorn the hooks and the worker class (uvicorn's, with
modelport's HTTP limits: :mod:`modelport.server.worker`) ``modelport serve --workers`` uses. It is
the one modelport module with effects at import: name it only as gunicorn's config.
"""

from __future__ import annotations

from typing import Any

from modelport.errors import ConfigError
from modelport.observability import multiproc
from modelport.server.logs import configure_logging, gunicorn_logger
from modelport.settings import Settings

_settings = Settings()
if _settings.metrics_port is not None:  # only `modelport serve` opens it: fail, never go silent
    raise ConfigError(
        "MODELPORT_METRICS_PORT works with `modelport serve --workers N`; with a gunicorn "
        "command of your own, leave it unset and scrape /metrics on the app's port"
    )
configure_logging(_settings)
_directory, _created = multiproc.prepare()

logger_class = gunicorn_logger(_settings)
worker_class = "modelport.server.worker.Worker"
child_exit = multiproc.child_exit


def on_exit(server: Any) -> None:
    multiproc.cleanup(_directory, _created)
