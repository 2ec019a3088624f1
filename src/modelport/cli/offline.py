"""Offline batch scoring: read records from CSV, JSON or JSON Lines, predict in chunks, write
answers as JSON Lines or CSV. Memory stays flat: one chunk is held at a time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

from modelport.core.dataplane import DataPlane
from modelport.core.registry import LoadedModel
from modelport.errors import BadRequest
from modelport.protocols.answers import answers

__all__ = ["count_records", "predict_records", "read_records", "write_answers"]

CHUNK = 1024


def _json_records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path}: not valid JSON: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"{path}: item {index} is not an object of field values")
        yield item


def _jsonl_records(path: Path) -> Iterator[dict[str, Any]]:
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
            yield item


def _csv_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records from a ``.csv``, ``.json`` (one object or a list) or ``.jsonl`` file."""
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


def predict_records(
    plane: DataPlane,
    model: LoadedModel,
    records: Iterable[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(record, answer)`` pairs, predicted a chunk at a time; a bad record names its row."""
    iterator = iter(records)
    done = 0
    while chunk := list(islice(iterator, CHUNK)):
        rows = plane.records_to_rows(model, chunk, prefix=("row",), start=done)
        for index, answer in enumerate(answers(plane.infer_sync(model, rows))):
            yield chunk[index], answer
        done += len(chunk)
        if progress is not None:
            progress(len(chunk))


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
