"""Keys and caller scopes (:mod:`modelport.protocols.auth`), and a guard that every route which
changes state is an admin route, so a new one cannot be added open by mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from modelport.errors import Forbidden, Unauthorized
from modelport.protocols import routes
from modelport.protocols.auth import (
    check_admin,
    check_inference,
    check_reader,
    inference_keys,
    scope_of,
)
from tests.conftest import ClientFactory
from tests.helpers import write_fake_model

# state-changing routes that are no admin route, and why they may be
NOT_ADMIN = {
    "/feedback": "the inference key when one is set (tests/e2e/test_auth_recording.py)",
    "/v2/repository/index": "reads what GET /models shows; POST only because the protocol says so",
}


def _bearer(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]


def test_inference_keys_are_a_comma_separated_list_each_its_own_scope() -> None:
    keys = inference_keys(SecretStr(" alice , bob,,"))
    assert [key for key, _ in keys] == [b"alice", b"bob"]
    assert [scope for _, scope in keys] == [scope_of(b"alice"), scope_of(b"bob")]
    assert scope_of(b"alice") != scope_of(b"bob")
    assert re.fullmatch(r"[0-9a-f]{16}", scope_of(b"alice"))  # a digest, never the key
    assert inference_keys(None) == inference_keys(SecretStr("")) == ()
    assert check_inference(_bearer("bob"), keys) == scope_of(b"bob")
    assert check_inference([(b"x-api-key", b"alice")], keys) == scope_of(b"alice")
    for headers in ([], _bearer("carol"), _bearer("alice,bob"), [(b"x-admin-key", b"alice")]):
        with pytest.raises(Unauthorized):
            check_inference(headers, keys)


def test_reports_take_an_inference_key_or_the_admin_key() -> None:
    keys, admin = inference_keys(SecretStr("alice")), SecretStr("root")
    check_reader([], (), admin)  # no inference key: as open as predictions
    check_reader(_bearer("alice"), keys, admin)
    check_reader([(b"x-admin-key", b"root")], keys, admin)
    for headers in ([], _bearer("root-ish"), [(b"x-api-key", b"root")]):
        with pytest.raises(Unauthorized):
            check_reader(headers, keys, admin)
    with pytest.raises(Unauthorized):
        check_reader(_bearer("root"), keys, None)


def test_the_admin_key_fails_closed() -> None:
    for key in (None, SecretStr("")):
        with pytest.raises(Forbidden, match="MODELPORT_ADMIN_KEY"):
            check_admin(_bearer(""), key)
    with pytest.raises(Unauthorized, match="admin API: the key sent is not the admin key of"):
        check_admin(_bearer("guess"), SecretStr("root"))
    with pytest.raises(Unauthorized, match="send the admin key as Authorization: Bearer <key>"):
        check_admin([], SecretStr("root"))
    check_admin(_bearer("root"), SecretStr("root"))


def test_a_refused_key_is_told_apart_from_a_missing_one_and_never_shown() -> None:
    keys = inference_keys(SecretStr("alice"))
    with pytest.raises(Unauthorized, match="send the inference key as") as missing:
        check_inference([], keys)
    with pytest.raises(Unauthorized, match="the key sent is not the inference key of") as wrong:
        check_inference([(b"x-api-key", b"mallory-secret")], keys)
    assert "mallory" not in str(wrong.value) + str(missing.value)
    with pytest.raises(Unauthorized, match=r"not the inference key \(or the admin key\) of"):
        check_reader(_bearer("guess"), keys, SecretStr("root"))


def _state_changing(client: object) -> list[tuple[str, str]]:
    """Every (method, path) of the API that is not a read, with its parameters filled in."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    found = []
    for template, operations in spec["paths"].items():
        path = re.sub(r"\{version\}", "1", re.sub(r"\{\w+\}", "m", template))
        for method in operations:
            admin = template.startswith("/admin/")
            if (method != "get" or admin) and routes.match(path) is None:
                found.append((method.upper(), path))
    return found


def test_every_state_changing_route_needs_the_admin_key(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    write_fake_model(tmp_path, "m")
    with make_client(tmp_path) as client:
        checked = _state_changing(client)
        for method, path in checked:
            if path not in NOT_ADMIN:
                answer = client.request(method, path, headers={"X-Admin-Key": "guess"})
                assert answer.status_code == 403, (method, path)
                assert "MODELPORT_ADMIN_KEY" in answer.json()["error"]
        assert client.post("/v2/models/m/infer").status_code != 404  # the model still serves
    assert {path for _, path in checked} >= {*NOT_ADMIN, "/v2/repository/models/m/unload"}
    with make_client(tmp_path, admin_key="root") as client:
        for method, path in checked:
            if path not in NOT_ADMIN:
                answer = client.request(method, path, headers={"Authorization": "Bearer guess"})
                assert answer.status_code == 401, (method, path)
