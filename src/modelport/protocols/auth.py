"""API keys: the admin key (``MODELPORT_ADMIN_KEY``) and the optional inference keys
(``MODELPORT_INFERENCE_KEY``, one key or several separated by commas).

Everything fails closed:

* **admin routes** (``/admin/...`` and the V2 repository's load and unload) need the admin key;
  without one configured they answer 403 ``admin API disabled``, never open. There is no
  exception for loopback callers: behind a reverse proxy on the same host every caller is one.
* **predictions** need an inference key when one is set (401 otherwise);
* **outcome routes** (``/feedback``, ``/experiments``) need an inference key when one is set;
  ``/experiments`` (a read-only report) also takes the admin key.

A key is sent as ``Authorization: Bearer <key>``, or in ``X-Admin-Key`` (admin) / ``X-Api-Key``
(inference), and compared in constant time. Each inference key is a **caller scope**: its
predictions are recorded under the scope (:func:`scope_of`, a digest of the key, never the key
itself), and feedback finds only the predictions of its own scope, so no caller can claim
another key's request id. Without inference keys every caller shares the anonymous scope ``""``.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from modelport.errors import Forbidden, Unauthorized

__all__ = [
    "ANONYMOUS",
    "InferenceKeys",
    "check_admin",
    "check_inference",
    "check_reader",
    "inference_keys",
    "presented_key",
    "scope_of",
]

ANONYMOUS = ""  # the scope of every caller when no inference key is set
InferenceKeys = tuple[tuple[bytes, str], ...]  # (key, its scope) per inference key


def presented_key(headers: list[tuple[bytes, bytes]], own_header: bytes) -> bytes | None:
    """The key a request presents: a Bearer token, else the value of ``own_header``."""
    found = None
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
        if name == own_header:
            found = value
    return found


def scope_of(key: bytes) -> str:
    """The caller scope of an inference key: 16 hex digits of a digest, stable across restarts."""
    return hashlib.sha256(b"modelport-scope\x00" + key).hexdigest()[:16]


def inference_keys(setting: SecretStr | None) -> InferenceKeys:
    """The configured inference keys with their scopes; empty when none is set."""
    if setting is None:
        return ()
    keys = (k.strip().encode() for k in setting.get_secret_value().split(","))
    return tuple((k, scope_of(k)) for k in keys if k)


def _matches(given: bytes | None, key: SecretStr) -> bool:
    return given is not None and hmac.compare_digest(given, key.get_secret_value().encode())


def _scope(given: bytes | None, keys: InferenceKeys) -> str | None:
    """The scope of the inference key ``given`` is, comparing with every key (constant time)."""
    found = None
    for key, scope in keys:
        if given is not None and hmac.compare_digest(given, key):
            found = scope
    return found


def check_admin(headers: list[tuple[bytes, bytes]], key: SecretStr | None) -> None:
    """Raise unless the request carries the admin key (403 when none is configured)."""
    if key is None or not key.get_secret_value():
        raise Forbidden(
            "admin API disabled: set MODELPORT_ADMIN_KEY on the server to turn it on, then "
            "send it as Authorization: Bearer <key>"
        )
    given = presented_key(headers, b"x-admin-key")
    if not _matches(given, key):
        raise Unauthorized(_refusal("admin API: ", "the admin key", given))


def check_inference(headers: list[tuple[bytes, bytes]], keys: InferenceKeys) -> str:
    """The caller scope of a request carrying an inference key; raise 401 otherwise."""
    given = presented_key(headers, b"x-api-key")
    scope = _scope(given, keys)
    if scope is None:
        raise Unauthorized(_refusal("", "the inference key", given))
    return scope


def check_reader(
    headers: list[tuple[bytes, bytes]], keys: InferenceKeys, admin: SecretStr | None
) -> None:
    """Raise 401 unless a report reader carries an inference key or the admin key (when
    inference keys are set; without them reports are as open as predictions)."""
    if not keys:
        return
    given = presented_key(headers, b"x-api-key")
    if _scope(given, keys) is not None:
        return
    admin_given = presented_key(headers, b"x-admin-key")
    if admin is not None and admin.get_secret_value() and _matches(admin_given, admin):
        return
    raise Unauthorized(_refusal("", "the inference key (or the admin key)", given or admin_given))


def _refusal(prefix: str, what: str, given: bytes | None) -> str:
    """Why a key was refused: none was sent, or the one sent is not ``what`` (the key itself is
    never shown)."""
    if given:
        return f"{prefix}the key sent is not {what} of this server"
    return f"{prefix}send {what} as Authorization: Bearer <key>"
