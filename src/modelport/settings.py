"""The one settings tree: environment variables prefixed ``MODELPORT_`` (plus ``PORT`` and
``WEB_CONCURRENCY``, which hosting platforms set), overridden by CLI flags.

Nothing is read at import time: call :class:`Settings` to read the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseSettings):
    """Server settings. Each field reads ``MODELPORT_<FIELD>`` from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="MODELPORT_", extra="ignore", populate_by_name=True, validate_default=True
    )

    models: Path = Field(
        Path("models"),
        description="A model repository folder, one model's folder, or a model file.",
    )
    host: str = Field("0.0.0.0", description="Address to bind.")
    port: int = Field(
        8000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("MODELPORT_PORT", "PORT", "port"),
        description="Port to bind; honours PORT as set by Render, Railway and Heroku.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("MODELPORT_WORKERS", "WEB_CONCURRENCY", "workers"),
        description="Worker processes; more than 1 runs gunicorn with uvicorn workers.",
    )
    default_model: str | None = Field(
        None, description="Model answering the bare /predict; default: the only or first model."
    )
    trust: list[Path] = Field(
        default_factory=list,
        description="Files (or folders) to load as they are, even when no trusted pin vouches "
        "for them.",
    )
    pin_file: Path | None = Field(
        None,
        description="The lock file of trusted sha256 pins (`modelport pin`); default: "
        "modelport.lock beside the model repository. Keep it where the model folders' writers "
        "cannot write.",
    )
    pin_key: SecretStr | None = Field(
        None,
        description="HMAC key: pins signed with it in a sidecar or manifest are trusted too; "
        "`modelport pin` and `modelport import` sign with it when set.",
    )
    strict_readiness: bool = Field(
        True,
        description="Readiness (/ready, /v2/health/ready) answers 503 while any model failed to "
        "load (Triton's --strict-readiness); false: ready while at least one model serves. "
        "With no model loaded it is never ready.",
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 past it)."
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="Bytes of request line and headers one request may send (431 past it).",
    )
    max_headers: int = Field(100, ge=8, description="Header lines per request (431 past it).")
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a request's line and headers may take to arrive, counted from the "
        "connection or from its first byte (408, or a plain close if nothing came).",
    )
    body_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a request body may take to arrive once the headers did (408).",
    )
    keepalive_timeout: float = Field(
        5.0, gt=0, description="Seconds an idle keep-alive connection stays open between requests."
    )
    max_connections: int = Field(
        8192,
        ge=1,
        description="Open connections per worker; past it a request is answered 503 + Retry-After "
        "and its connection closed (lowered to what the file-descriptor limit allows).",
    )
    request_timeout: float = Field(
        30.0, gt=0, description="Seconds a prediction may take, queueing included (504 past it)."
    )
    max_batch_instances: int = Field(
        1000,
        ge=1,
        description="Instances (rows) one request may hold on every protocol: /predict/batch, "
        "V1 instances or inputs, the V2 batch dimension (413 past it).",
    )
    graceful_timeout: float = Field(
        30.0, gt=0, description="Seconds in-flight requests get to finish after SIGTERM."
    )
    background_loading: bool = Field(
        False,
        description="Accept connections while models load (liveness answers, predictions 503 "
        "until ready). Default: a worker takes traffic only once its models are loaded.",
    )
    outcomes: bool = Field(
        True, description="Record every prediction and its feedback (A/B test outcomes)."
    )
    outcomes_db: Path | None = Field(
        None,
        description="SQLite file of the outcome store; default <models>/.modelport/outcomes.db.",
    )
    outcomes_url: str | None = Field(
        None, description="postgresql://user:pass@host/db: keep outcomes in PostgreSQL instead."
    )
    outcomes_queue: int = Field(
        10_000, ge=1, description="Records waiting for the writer; past it new ones are dropped."
    )
    outcomes_process: bool = Field(
        True,
        description="Commit recorded predictions in a writer process of their own (started with "
        "the first batch, about 20 MB): the database's work then leaves the server's GIL to the "
        "event loop, 3 to 5 % more predictions per second on a small model under load. false: "
        "the server's writer thread commits them itself.",
    )
    outcomes_required: bool = Field(
        False,
        description="Readiness (/ready) fails while predictions cannot be recorded (the outcome "
        "store failed to open or its last write failed). Default: /ready reports it in its "
        "outcomes detail and serving goes on.",
    )
    outcomes_max_age_days: float = Field(
        30,
        ge=0,
        description="Recorded requests older than this many days are deleted, with their rows "
        "and feedback (checked at start and every minute); 0: kept whatever their age.",
    )
    outcomes_max_rows: int = Field(
        1_000_000,
        ge=0,
        description="Recorded requests kept at most: past it the oldest are deleted, with their "
        "rows and feedback (checked at start and every minute); 0: no limit.",
    )
    outcomes_tau: float = Field(
        0.3,
        gt=0,
        le=10,
        description="Mixing standard deviation of the A/B report's always-valid test (mSPRT), in "
        "standard deviations of one observation: the effect size it is most sensitive to.",
    )
    admin_key: SecretStr | None = Field(
        None,
        description="Key of the admin API (rollout, traffic) and of V2 model load/unload; "
        "without it those routes answer 403.",
    )
    inference_key: SecretStr | None = Field(
        None,
        description="One key, or several separated by commas (each its own request-id scope); "
        "when set, predictions, /feedback and /experiments need one (Authorization: Bearer or "
        "X-Api-Key).",
    )
    watch_interval: float = Field(
        1.0,
        ge=0,
        description="Seconds between checks of the repository's rollout state (every worker "
        "applies rollouts and traffic changes made by another); 0 turns it off.",
    )
    registry_cache: Path = Field(
        Path("~/.cache/modelport/registry"),
        description="Folder of the model versions downloaded from an MLflow registry "
        "(models:/NAME@ALIAS), each pinned by the sha256 of its files at first download; a server "
        "whose registry is unreachable at start serves from it.",
    )
    registry_poll_interval: float = Field(
        5.0,
        ge=0,
        description="Seconds between checks of the MLflow registry for an alias that moved "
        "(models:/NAME@ALIAS); the new version rolls out with no downtime. 0 turns it off.",
    )
    log_level: LogLevel = "info"
    access_log: bool = Field(
        False,
        description=(
            "One log line per request on modelport.access. Off by default: on one worker it costs "
            "about 15 % of the throughput of a small model (about 13 µs of CPU per "
            "request), and the platform in front (a load balancer, an ingress) logs requests "
            "already."
        ),
    )
    metrics: bool = Field(
        True, description="Prometheus metrics on /metrics (or on metrics_port); false: none."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or as one JSON object per line."
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve /metrics on this port only (default: on the main port).",
    )
    grpc_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Also serve the Open Inference Protocol over gRPC on this port, in the same "
        "process as HTTP (pip install 'modelport[grpc]'); with several workers they share it "
        "(SO_REUSEPORT).",
    )
    grpc_max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest gRPC message received or sent (RESOURCE_EXHAUSTED past it).",
    )
    grpc_tls_cert: Path | None = Field(
        None, description="PEM certificate chain: serve gRPC over TLS (with grpc_tls_key)."
    )
    grpc_tls_key: Path | None = Field(None, description="PEM private key of grpc_tls_cert.")
    tracing: bool = Field(
        False,
        description="OpenTelemetry spans per request (pip install 'modelport[otel]'); exported "
        "over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT when set.",
    )
    ui: bool = Field(
        True,
        description="The playground at /, a status page per model at /status/<model> and their "
        "assets; false: those answer 404 (/docs and /redoc stay, served offline).",
    )
    title: str = "modelport"
