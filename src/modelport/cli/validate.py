"""``modelport validate``: load every model of a repository and run a sample prediction on each."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.core.dataplane import DataPlane
from modelport.core.registry import ModelState, Registry
from modelport.core.repository import scan
from modelport.errors import ModelportError
from modelport.protocols.answers import answers

__all__ = ["ValidationRow", "validate_repository"]


@dataclass(frozen=True, slots=True)
class ValidationRow:
    """The outcome for one model version."""

    model: str
    version: int
    runtime: str | None
    ok: bool
    load_seconds: float | None
    sample: dict[str, Any] | None
    answer: dict[str, Any] | None
    error: str | None


def validate_repository(path: Path, trusted: Iterable[Path] = ()) -> list[ValidationRow]:
    """Load everything at ``path`` and predict the signature's example with each version."""
    registry = Registry(scan(path), trusted=trusted)
    registry.load_all()
    plane = DataPlane(registry)
    rows = []
    for model in registry.models.values():
        for mv in model.versions.values():
            loaded = mv.loaded
            if mv.state is not ModelState.READY or loaded is None:
                error = mv.detail or mv.error  # the whole message: this is the operator
                rows.append(
                    ValidationRow(
                        model.name, mv.version, mv.card.runtime, False, None, None, None, error
                    )
                )
                continue
            sample = loaded.signature.example()
            try:
                batch = plane.records_to_rows(loaded, [sample])
                answer = answers(plane.infer_sync(loaded, batch))[0]
                error = None
            except ModelportError as exc:
                answer, error = None, exc.message
            rows.append(
                ValidationRow(
                    model.name,
                    mv.version,
                    loaded.runtime_name,
                    error is None,
                    mv.load_seconds,
                    sample,
                    answer,
                    error,
                )
            )
    registry.unload_all()
    return rows
