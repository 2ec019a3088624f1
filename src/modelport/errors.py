"""The one error hierarchy of modelport.

Every error carries the HTTP status it maps to, so one handler turns any of them into an answer::

    ModelportError (500)
    ├── BadRequest (400)
    │   └── InvalidInput (422)        a request body that does not fit the model's signature
    ├── Unauthorized (401)            a protected route without the right key
    ├── Forbidden (403)               the admin API when no admin key is configured
    ├── ModelNotFound (404)           no such model or version
    ├── MethodNotAllowed (405)        a prediction route asked with another method than POST
    ├── UnknownRequest (404)          feedback for a request id with no recorded prediction
    ├── PageNotFound (404)            a page's asset that is not there
    ├── Conflict (409)                a rollout that failed or cannot apply; the old version serves
    ├── RequestTimeout (408)          the request's headers or body did not arrive in time
    ├── PayloadTooLarge (413)         answered with Connection: close (the rest is not read)
    ├── HeadersTooLarge (431)         request line and headers past their size or count limit
    ├── ModelNotReady (503)           known, but not loaded (yet, or because its load failed)
    ├── Overloaded (503)              the model's queue is full; answered with Retry-After
    ├── GatewayTimeout (504)          the request's deadline passed before the model answered
    ├── OutcomesUnavailable (503)     predictions are not being recorded (no outcome store)
    │   └── WriterLost (503)          the outcome writer process exited or stopped answering
    └── ConfigError (409)             a model's files on disk do not allow it: cards, artifacts,
        │                             extras (at start that model fails, listed with it, and the
        │                             others serve; asked for by a load or rollout, the request
        │                             conflicts with the files: 409)
        ├── CardError                 a model card that does not parse or validate
        ├── SignatureError            a card that contradicts its model
        ├── UntrustedArtifact         a pickle that was never imported or whose hash changed
        ├── MissingExtra              a runtime whose optional dependencies are not installed
        └── ModelLoadError            the runtime could not load the artifact

Every class declares its own status (a test walks this tree). Validation uses these errors, never
``assert``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "CardError",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "GatewayTimeout",
    "HeadersTooLarge",
    "InvalidInput",
    "MethodNotAllowed",
    "MissingExtra",
    "ModelLoadError",
    "ModelNotFound",
    "ModelNotReady",
    "ModelportError",
    "OutcomesUnavailable",
    "Overloaded",
    "PageNotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "SignatureError",
    "Unauthorized",
    "UnknownRequest",
    "UntrustedArtifact",
    "WriterLost",
]


class ModelportError(Exception):
    """Base of every error modelport raises on purpose."""

    status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, Any]:
        """The JSON body of the answer: ``error`` (KServe's key) and ``detail`` (FastAPI's)."""
        return {"error": self.message, "detail": self.message, "code": self.code}

    def headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After`` for overload)."""
        return {}


class BadRequest(ModelportError):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"


class InvalidInput(BadRequest):
    """A body that does not fit the signature; ``errors`` lists each problem by field."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_input"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [{"loc": ["body"], "msg": message, "type": "invalid_input"}]

    def to_body(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.errors, "code": self.code}


class Unauthorized(ModelportError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ModelportError):
    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class Conflict(ModelportError):
    status = HTTPStatus.CONFLICT
    code = "conflict"


class ModelNotFound(ModelportError):
    status = HTTPStatus.NOT_FOUND
    code = "model_not_found"


class UnknownRequest(ModelportError):
    status = HTTPStatus.NOT_FOUND
    code = "unknown_request"


class PageNotFound(ModelportError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class OutcomesUnavailable(ModelportError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "outcomes_unavailable"


class WriterLost(OutcomesUnavailable):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "outcome_writer_lost"


class MethodNotAllowed(ModelportError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    code = "http_405"

    def __init__(self, allow: str = "POST") -> None:
        super().__init__("Method Not Allowed: predictions are sent with POST (examples at /docs)")
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow}


class RequestTimeout(ModelportError):
    status = HTTPStatus.REQUEST_TIMEOUT
    code = "request_timeout"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class PayloadTooLarge(ModelportError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}  # the rest of the body is never read: end the connection


class HeadersTooLarge(ModelportError):
    status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    code = "headers_too_large"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class ModelNotReady(ModelportError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "model_not_ready"


class Overloaded(ModelportError):
    """``retry_after``: the whole seconds the client is asked to wait (``Retry-After``)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "overloaded"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class GatewayTimeout(ModelportError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    code = "timeout"


class ConfigError(ModelportError):
    status = HTTPStatus.CONFLICT
    code = "config_error"


class CardError(ConfigError):
    status = HTTPStatus.CONFLICT
    code = "card_error"


class SignatureError(ConfigError):
    status = HTTPStatus.CONFLICT
    code = "signature_error"


class UntrustedArtifact(ConfigError):
    status = HTTPStatus.CONFLICT
    code = "untrusted_artifact"


class MissingExtra(ConfigError):
    status = HTTPStatus.CONFLICT
    code = "missing_extra"


class ModelLoadError(ConfigError):
    status = HTTPStatus.CONFLICT
    code = "model_load_error"
