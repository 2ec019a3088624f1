"""Offline batch scoring: read records from CSV, JSON or JSON Lines, predict in chunks, write
answers as JSON Lines or CSV. Memory stays flat: one chunk is held at a time.

A row that does not fit the model's signature stops the run, or (``--on-error skip``) is left
out and listed with its column and the reason; an empty cell is a "missing value".
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ValidationError

from modelport.core.dataplane import DataPlane
from modelport.core.registry import LoadedModel
from modelport.errors import BadRequest, ConfigError, InvalidInput
from modelport.protocols.answers import answers

__all__ = [
    "BadRow",
    "BadRows",
    "count_records",
    "predict_records",
    "read_records",
    "taken",
    "write_answers",
]

CHUNK = 1024


Record = tuple[int | None, dict[str, Any]]  # (line in the file where known, field values)


@dataclass(frozen=True, slots=True)
class BadRow:
    """One problem with one input row: which row (0-based, as errors name it), where in the file,
    which column, the value and why it was refused."""

    row: int
    line: int | None
    column: str
    value: Any
    reason: str


def _json_records(path: Path) -> Iterator[Record]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path}: not valid JSON: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"{path}: item {index} is not an object of field values")
        yield None, item


def _jsonl_records(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadRequest(f"{path}:{number}: not valid JSON: {exc}") from exc
            if not isinstance(item, dict):
                raise BadRequest(f"{path}:{number}: not an object of field values")
            yield number, item


def _csv_records(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            yield reader.line_num, record


def read_records(path: Path) -> Iterator[Record]:
    """Records from a ``.csv``, ``.json`` (one object or a list) or ``.jsonl`` file, each with
    its line number (``None`` in a ``.json`` file)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_records(path)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_records(path)
    if suffix == ".json":
        return _json_records(path)
    raise BadRequest(f"{path}: unsupported input format {suffix!r}; use .csv, .json or .jsonl")


def count_records(path: Path) -> int | None:
    """How many records a file holds (for a progress bar), where that is cheap to tell."""
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        return None
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0) if path.suffix.lower() == ".csv" else lines


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _problems(error: ValidationError, row: int, line: int | None, record: Any) -> list[BadRow]:
    problems = []
    for item in error.errors(include_url=False):
        column = str(item["loc"][0]) if item["loc"] else ""
        value = record.get(column) if isinstance(record, dict) else record
        missing = item["type"] == "missing" or _blank(value)
        reason = "missing value" if missing else item["msg"]
        problems.append(BadRow(row, line, column, None if missing else value, reason))
    return problems


class BadRows:
    """The rows ``--on-error skip`` leaves out, written as CSV as they come (row, line, column,
    value, reason), so that memory does not grow with them; counted."""

    def __init__(self, handle: IO[str] | None = None) -> None:
        self._writer = None if handle is None else csv.writer(handle)
        if self._writer is not None:
            self._writer.writerow(["row", "line", "column", "value", "reason"])
        self.rows = 0  # rows left out
        self.problems = 0  # their problems (a row may have several)

    def add(self, problems: list[BadRow]) -> None:
        """One left-out row's problems."""
        self.rows += 1
        self.problems += len(problems)
        if self._writer is not None:
            for item in problems:
                value = "" if item.value is None else item.value
                self._writer.writerow([item.row, item.line or "", item.column, value, item.reason])


def _parsed(
    model: LoadedModel, chunk: list[Record], start: int, skip: bool, bad: BadRows
) -> tuple[list[dict[str, Any]], list[BaseModel]]:
    """The chunk's records that fit the signature, validated; the others go to ``bad`` (or
    raise, naming the row, its column and the reason, unless ``skip``)."""
    good, parsed = [], []
    for index, (line, record) in enumerate(chunk, start):
        try:
            parsed.append(model.request.model_validate(record))
        except ValidationError as exc:
            problems = _problems(exc, index, line, record)
            if not skip:
                where = f" (line {line})" if line is not None else ""
                summary = "; ".join(f"row.{index}.{p.column}: {p.reason}" for p in problems)
                raise InvalidInput(summary + where) from exc
            bad.add(problems)
            continue
        good.append(record)
    return good, parsed


def predict_records(
    model: LoadedModel,
    records: Iterable[Record],
    progress: Callable[[int], None] | None = None,
    *,
    skip: bool = False,
    bad: BadRows | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(record, answer)`` pairs, predicted a chunk at a time. A record that does not fit the
    signature stops it (naming the row, its column and the reason) or, with ``skip``, is left
    out and listed in ``bad``."""
    bad = BadRows() if bad is None else bad
    iterator = iter(records)
    done = 0
    while chunk := list(islice(iterator, CHUNK)):
        good, parsed = _parsed(model, chunk, done, skip, bad)
        if parsed:
            result = DataPlane.infer_sync(model, model.rows(parsed))
            yield from zip(good, answers(result), strict=True)
        done += len(chunk)
        if progress is not None:
            progress(len(chunk))


def taken(path: Path, option: str) -> ConfigError:
    """The refusal to replace ``path``, an output named by ``option``, that already exists."""
    return ConfigError(
        f"{path} already exists, and modelport replaces a file only when told to (it cannot "
        f"tell one it wrote from yours): give another {option}, or add --force to replace it"
    )


def write_answers(
    pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]],
    out: IO[str],
    fmt: str,
    labels: list[str],
) -> int:
    """Write answers as ``jsonl`` or ``csv`` (inputs, prediction, one probability per class)."""
    count = 0
    writer = None
    for record, answer in pairs:
        if fmt == "csv":
            row = {**record, "prediction": answer["prediction"]}
            if "probability" in answer:
                row["probability"] = answer["probability"]
                row.update(zip((f"p_{c}" for c in labels), answer["probabilities"], strict=False))
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row), extrasaction="ignore")
                writer.writeheader()
            writer.writerow(row)
        else:
            out.write(json.dumps(answer, ensure_ascii=False) + "\n")
        count += 1
    return count
