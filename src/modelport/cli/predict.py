"""``modelport predict``: load one model in-process and score one record or a file of them."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from modelport.cli.offline import count_records, predict_records, read_records, write_answers
from modelport.core.dataplane import DataPlane
from modelport.core.registry import LoadedModel
from modelport.errors import BadRequest, ConfigError
from modelport.protocols.answers import answers
from modelport.server.app import registry_from_settings
from modelport.settings import Settings

__all__ = ["load_for_predict", "predict_file", "predict_one"]


def load_for_predict(
    settings: Settings, name: str | None, version: int | None
) -> tuple[DataPlane, LoadedModel]:
    """Load just the model asked for (default: the repository's default model)."""
    registry = registry_from_settings(settings)
    model = registry.model(name)
    registry.load_model(model.name)
    failed = model.versions.get(model.default_version if version is None else version)
    if failed is not None and failed.detail is not None:  # the operator: the whole message
        raise ConfigError(failed.detail)
    plane = DataPlane(registry)
    return plane, plane.version(name, version)


def predict_one(plane: DataPlane, model: LoadedModel, data: str) -> dict[str, Any]:
    """The answer for one JSON object of field values."""
    try:
        record = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"--data is not valid JSON: {exc}") from exc
    rows = plane.records_to_rows(model, [record], prefix=("data",))
    return answers(plane.infer_sync(model, rows))[0]


def predict_file(
    plane: DataPlane, model: LoadedModel, source: Path, output: Path | None, console: Console
) -> int:
    """Score every record of ``source`` into ``output`` (stdout when None), with a progress bar."""
    fmt = "csv" if output is not None and output.suffix.lower() == ".csv" else "jsonl"
    signature = model.signature
    labels = [str(c) for c in (signature.output.class_names or signature.classes or [])]
    with ExitStack() as stack:
        handle = (
            stack.enter_context(output.open("w", encoding="utf-8", newline=""))
            if output is not None
            else sys.stdout
        )
        progress = stack.enter_context(
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                disable=output is None,
            )
        )
        task = progress.add_task(f"scoring {source.name}", total=count_records(source))
        pairs = predict_records(
            plane, model, read_records(source), lambda n: progress.advance(task, n)
        )
        return write_answers(pairs, handle, fmt, labels)
