"""Model sources other than a folder on disk: an MLflow model registry (``models:/NAME@ALIAS``).

:mod:`.registry` turns a registry URI into pinned version folders in a local cache, each with a
model card generated from its ``MLmodel`` (:mod:`.mlmodel`); only :mod:`.mlflow_client` imports
MLflow, and only when a registry source is used.
"""

from __future__ import annotations

__all__ = ["is_registry_uri"]


def is_registry_uri(text: object) -> bool:
    """Whether ``text`` (a string or a path) names an MLflow registry model."""
    return str(text).startswith("models:/")
