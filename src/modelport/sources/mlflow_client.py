"""The one module that imports MLflow (``pip install 'modelport[mlflow]'``, mlflow-skinny): it
asks the registry which version an alias names and downloads a version's files.

The tracking server comes from ``MLFLOW_TRACKING_URI`` as MLflow reads it (an HTTP server, a
``sqlite:`` store, a folder). Requests fail fast (no retries, a 10 s timeout unless
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``MLFLOW_HTTP_REQUEST_TIMEOUT`` say otherwise), so a
registry that is down costs a poll, never a stalled server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, MissingExtra, ModelNotFound
from modelport.hints import pip_extra

__all__ = ["RegistryUnavailable", "download", "resolve"]

_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


class RegistryUnavailable(ConfigError):
    """The registry did not answer (down, unreachable, or failing)."""


def _mlflow() -> Any:
    for key, value in _FAST.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise MissingExtra(
            f"serving from an MLflow registry needs mlflow: {pip_extra('mlflow')}"
        ) from exc
    return mlflow, MlflowException


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "error_code", ""))
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def resolve(name: str, alias: str | None, version: int | None) -> int:
    """The version ``alias`` names now (or ``version``, checked to exist)."""
    mlflow, failure = _mlflow()
    client = mlflow.MlflowClient()
    try:
        if alias is not None:
            return int(client.get_model_version_by_alias(name, alias).version)
        return int(client.get_model_version(name, str(version)).version)
    except failure as exc:
        if _missing(exc):
            what = f"alias {alias!r}" if alias is not None else f"version {version}"
            raise ModelNotFound(f"the MLflow registry has no {what} of {name!r}") from exc
        raise RegistryUnavailable(f"the MLflow registry failed: {_first_line(exc)}") from exc
    except Exception as exc:  # connection refused, timeouts, DNS: the registry is away
        raise RegistryUnavailable(
            f"the MLflow registry is unreachable: {_first_line(exc)}"
        ) from exc


def download(name: str, version: int, target: Path) -> Path:
    """Download every file of ``models:/name/version`` into the empty folder ``target``."""
    mlflow, failure = _mlflow()
    try:
        found = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=str(target)
        )
    except failure as exc:
        if _missing(exc):
            raise ModelNotFound(
                f"the MLflow registry has no version {version} of {name!r}"
            ) from exc
        raise RegistryUnavailable(
            f"downloading {name} v{version} failed: {_first_line(exc)}"
        ) from exc
    except Exception as exc:
        raise RegistryUnavailable(
            f"downloading {name} v{version} failed: {_first_line(exc)}"
        ) from exc
    return Path(found)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def load_pyfunc(folder: Path) -> Any:
    """``mlflow.pyfunc.load_model`` of a trusted model folder (it runs the model's code)."""
    mlflow, _ = _mlflow()
    return mlflow.pyfunc.load_model(str(folder))
