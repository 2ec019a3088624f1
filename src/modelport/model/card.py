"""The model card, ``models/<name>/modelport.yaml``: runtime, signature, class names, description.

A card is optional; every key in it is. Misspelt keys are refused, so a typo never silently
changes how a model is served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelport.errors import CardError
from modelport.model.policy import TrafficPolicy, VersionPolicy
from modelport.model.signature import CardSignature

__all__ = ["CARD_FILE", "BatchingCard", "ModelCard", "read_card", "write_card"]

CARD_FILE = "modelport.yaml"


class BatchingCard(BaseModel):
    """Micro-batching of concurrent requests (on by default for runtimes that batch)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    max_batch_size: int = Field(64, ge=1, le=65536, description="Rows per batch at most.")
    max_latency_ms: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description=(
            "Fill window, opt-in. 0 (default): natural batching, the model takes whatever is"
            " queued when it is free and never waits. Above 0: a batch that is not full (a lone"
            " request at idle included) waits up to this long for more rows; for models whose"
            " cost barely grows with batch size (GPU)."
        ),
    )
    max_queue: int = Field(
        1024, ge=1, description="Requests waiting at most; past it, 503 + Retry-After."
    )
    max_wait_ms: float | None = Field(
        100,
        gt=0,
        le=600_000,
        description=(
            "Controlled delay (after CoDel), on by default; null turns it off. When the queue"
            " did not drain for this long (requests arrive faster than the model serves them),"
            " only one batch more is queued and the rest are answered 503 + Retry-After at once,"
            " before their body is read; and a request that waited longer than this (or two"
            " batch durations, if more: a slow first batch never counts as overload) is answered"
            " 503 instead of run. Raise it for clients that send bursts far larger than the"
            " model serves in this time and would rather wait than retry."
        ),
    )
    max_retry_after_s: int = Field(
        4,
        ge=1,
        le=3600,
        description=(
            "The longest Retry-After a refusal asks for. Each refusal's Retry-After is drawn at"
            " random from 1 to about how many requests the model refused for each it served"
            " lately, at most this: clients refused together come back spread out, not as one"
            " wave."
        ),
    )


class ModelCard(BaseModel):
    """Everything modelport needs to know about a model that the model cannot tell it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Defaults to the model's folder name.")
    description: str | None = None
    runtime: str | None = Field(None, description="Defaults to the one that reads the artifact.")
    artifact: str | None = Field(
        None, description="File name inside each version folder; default: the only model file."
    )
    default_version: int | None = Field(None, ge=1, description="Default: the highest version.")
    strict: bool = Field(False, description="Reject unknown fields in requests (422).")
    signature: CardSignature | None = None
    batching: BatchingCard = Field(default_factory=BatchingCard)
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Runtime-specific settings."
    )
    version_policy: VersionPolicy = Field(
        default_factory=VersionPolicy, description="`all`, `latest: N` or `specific: [..]`."
    )
    traffic: TrafficPolicy | None = Field(None, description="Split, canary and shadow traffic.")
    source: str | None = Field(
        None,
        pattern=r"^models:/",
        description="Serve this model from an MLflow registry: models:/NAME@ALIAS (followed: "
        "a moved alias rolls out by itself) or models:/NAME/VERSION.",
    )
    follow: Literal["switch", "canary", "shadow"] = Field(
        "switch",
        description="How a version the alias moved to rolls out: `switch` (load, warm, switch, "
        "drain), `canary` (through the card's traffic.canary steps and bounds) or `shadow` "
        "(loaded beside the serving version, it gets copies of live traffic, the card's "
        "traffic.shadow.fraction of it, until `modelport rollout` promotes it).",
    )

    def save(self, path: Path | str) -> Path:
        """Write the card as YAML to ``path`` (for ``modelport import --card``, or as a model's
        ``modelport.yaml``); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_card(target, self)
        return target


def _format(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def read_card(path: Path) -> ModelCard:
    """Read and validate a card file; a missing file is an empty card."""
    if not path.is_file():
        return ModelCard()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return ModelCard()
    if not isinstance(raw, dict):
        raise CardError(f"{path}: a model card is a mapping of keys, got {type(raw).__name__}")
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        raise CardError(f"{path}: {_format(exc)}") from exc


def write_card(path: Path, card: ModelCard) -> None:
    data = card.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    output = card.signature.output if card.signature is not None else None
    if output is not None and "kind" in output.model_fields_set:  # stated, even as the default
        data.setdefault("signature", {}).setdefault("output", {})["kind"] = output.kind
    path.write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
    )
