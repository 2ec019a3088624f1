"""``modelport predict``: load one model in-process and score one record or a file of them."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from modelport.cli.offline import (
    BadRows,
    count_records,
    predict_records,
    read_records,
    taken,
    write_answers,
)
from modelport.core.dataplane import DataPlane
from modelport.core.registry import LoadedModel
from modelport.errors import BadRequest, ConfigError
from modelport.protocols.answers import answers
from modelport.server.app import registry_from_settings
from modelport.settings import Settings

__all__ = [
    "FileScore",
    "Outputs",
    "errors_path",
    "load_for_predict",
    "predict_file",
    "predict_one",
    "score_file",
]


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


@dataclass(frozen=True, slots=True)
class FileScore:
    """What scoring a file did: answers written, and the rows left out (``--on-error skip``)."""

    written: int
    bad_rows: int


def _publish(partial: Path, output: Path, force: bool, option: str = "--output") -> None:
    """``partial`` becomes ``output``: replacing it only with ``force``, else exclusively."""
    if force:
        partial.replace(output)
        return
    try:
        os.link(partial, output)  # fails if output exists, even one made while scoring
    except FileExistsError:
        raise taken(output, option) from None
    except OSError:  # a file system without hard links
        if output.exists() or output.is_symlink():
            raise taken(output, option) from None
        partial.replace(output)


@contextmanager
def _replaced(
    output: Path | None,
    force: bool,
    option: str = "--output",
    wanted: Callable[[], bool] = lambda: True,
) -> Iterator[IO[str]]:
    """stdout, or a partial file that becomes ``output`` only when everything is written (and
    ``wanted()`` then says it is)."""
    if output is None:
        yield sys.stdout
        return
    # a new file of our own (created exclusively), never one that was already there
    descriptor, name = tempfile.mkstemp(
        prefix=f".{output.name}.", suffix=".partial", dir=output.parent
    )
    partial = Path(name)
    partial.chmod(0o644)  # as an output file is made, not mkstemp's 0600
    try:
        with open(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle
        if wanted():
            _publish(partial, output, force, option)
    finally:
        partial.unlink(missing_ok=True)  # ours: a link of it is the output now, if any


def predict_file(
    model: LoadedModel,
    source: Path,
    output: Path | None,
    console: Console,
    *,
    errors: Path | None = None,
    force: bool = False,
) -> FileScore:
    """Score every record of ``source`` into ``output`` (stdout when None), with a progress bar.

    A bad row stops it, naming the row (and nothing is written to ``output``), or with
    ``errors`` (``--on-error skip``) is left out and listed there as it comes; that file is
    written only when a row was left out. An existing file is replaced only with ``force``."""
    fmt = "csv" if output is not None and output.suffix.lower() == ".csv" else "jsonl"
    signature = model.signature
    labels = [str(c) for c in (signature.output.class_names or signature.classes or [])]
    with ExitStack() as stack:
        bad = BadRows()
        if errors is not None:  # published after the output (a stack unwinds last in, first out)
            listed = _replaced(errors, force, "--errors", lambda: bad.rows > 0)
            bad = BadRows(stack.enter_context(listed))
        handle = stack.enter_context(_replaced(output, force))
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
            model,
            read_records(source),
            lambda n: progress.advance(task, n),
            skip=errors is not None,
            bad=bad,
        )
        written = write_answers(pairs, handle, fmt, labels)
    return FileScore(written, bad.rows)


def errors_path(source: Path, output: Path | None) -> Path:
    """Where the refused rows are listed by default: beside the output (else the input)."""
    base = output or source
    return base.with_name(f"{base.stem}.errors.csv")


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where scoring ``source`` writes: ``output`` (stdout when None) and, with ``skip``, the
    list of bad rows. Neither replaces an existing file unless ``force``."""

    source: Path
    output: Path | None
    errors: Path
    skip: bool
    force: bool

    @classmethod
    def of(
        cls, source: Path, output: Path | None, errors: Path | None, *, skip: bool, force: bool
    ) -> Outputs:
        """The outputs, refused (before anything is scored) where a file already exists."""
        outputs = cls(source, output, errors or errors_path(source, output), skip, force)
        named = {"--output": output} if output is not None else {}
        if skip:
            named["--errors"] = outputs.errors
        for option, path in named.items():
            if not force and (path.exists() or path.is_symlink()):
                raise taken(path, option)
        return outputs


def score_file(model: LoadedModel, outputs: Outputs, console: Console) -> str | None:
    """Score ``outputs.source``; the summary line to print, if any."""
    output = outputs.output
    errors = outputs.errors if outputs.skip else None
    score = predict_file(model, outputs.source, output, console, errors=errors, force=outputs.force)
    summary = f"Wrote {score.written} predictions" + (f" to {output}" if output else "")
    if score.bad_rows:
        summary += f"; skipped {score.bad_rows} bad rows, listed in {outputs.errors}"
    return summary if output is not None or score.bad_rows else None
