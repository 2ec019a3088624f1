"""The pages' routes in process: the shells and their security headers, the assets and their
caching, the status JSON, the docs served from modelport's own copies, and MODELPORT_UI=false.
(The pages themselves run in a real browser in tests/e2e/test_playground.py.)"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelport.protocols.routes import match
from modelport.ui.assets import docs_assets, playground_assets
from modelport.ui.pages import DOCS_CSP, PAGE_CSP
from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW

PAGES = ["/", "/status/iris"]
UI_ONLY = [*PAGES, "/ui/status/iris", "/ui/assets/common.js", "/ui/assets/style.css"]


def _scripts_are_files(html: str) -> None:
    """Every script has a src on this server and no body; no URL names another host."""
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts
    for attributes, body in scripts:
        assert body == ""
        assert re.search(r'src="/(ui|docs)/assets/[\w.-]+\?v=[0-9a-f]{12}"', attributes)
    assert "http://" not in html
    assert "https://" not in html
    assert "//" not in html.replace("<!doctype html>", "")


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_shells_with_a_strict_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert "script-src 'self';" in PAGE_CSP
    assert "unsafe-inline" not in PAGE_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    _scripts_are_files(response.text)
    assert 'data-key="none"' in response.text
    assert "iris" not in response.text.replace("/status/iris", "")  # no model data in the shell


def test_the_title_is_escaped(repo: Path, make_client: ClientFactory) -> None:
    with make_client(repo, title='<script>alert("x")</script>') as client:
        text = client.get("/").text
        docs = client.get("/docs").text
    for html in (text, docs):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_an_unknown_models_status_page_is_404(client: TestClient) -> None:
    for path in ("/status/nope", "/ui/status/nope"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "model_not_found"


@pytest.mark.parametrize(
    "name", ["nope.js", "..%2Fpages.py", "%2e%2e%2fassets.py", "common.js.map"]
)
def test_an_unknown_asset_is_404(client: TestClient, name: str) -> None:
    response = client.get(f"/ui/assets/{name}")
    assert response.status_code == 404
    assert response.json()["code"] in ("not_found", "http_404")


def test_assets_are_cached_by_their_hash_and_revalidated_otherwise(client: TestClient) -> None:
    asset = playground_assets()["playground.js"]
    hashed = client.get(f"/ui/assets/playground.js?v={asset.digest}")
    assert hashed.status_code == 200
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert hashed.headers["content-type"] == "text/javascript; charset=utf-8"
    assert hashed.content == asset.body
    plain = client.get("/ui/assets/playground.js")
    assert plain.headers["cache-control"] == "no-cache"
    assert plain.headers["etag"] == asset.etag
    again = client.get("/ui/assets/playground.js", headers={"If-None-Match": asset.etag})
    assert again.status_code == 304
    assert again.content == b""


def test_assets_are_gzipped_when_accepted(client: TestClient) -> None:
    raw = client.get("/docs/assets/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["vary"] == "Accept-Encoding"
    asset = docs_assets()["swagger-ui-bundle.js"]
    assert asset.gzipped is not None
    assert gzip.decompress(asset.gzipped) == asset.body
    assert raw.content == asset.body  # the client decoded it
    plain = client.get("/docs/assets/swagger-ui-bundle.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


def test_docs_use_modelports_own_swagger_ui_and_redoc(client: TestClient) -> None:
    for path, wanted in [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]:
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == DOCS_CSP
        _scripts_are_files(response.text)
        assert f"/docs/assets/{wanted}?v=" in response.text
        assert client.get(f"/docs/assets/{wanted}").status_code == 200
    assert "unsafe-eval" not in DOCS_CSP
    assert b"cdn.redoc.ly" not in docs_assets()["redoc.standalone.js"].body
    assert b"validatorUrl: null" in docs_assets()["swagger-init.js"].body


def test_pages_are_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [
        p for p in paths if p in ("/", "/docs", "/redoc") or p.startswith(("/ui", "/status"))
    ]


def test_pages_are_outside_the_prediction_table() -> None:
    for path in ["/", "/status/iris", "/ui/status/iris", "/ui/assets/common.js", "/docs"]:
        assert match(path) is None


def test_the_status_json_reads_the_servers_own_counters(
    repo: Path, make_client: ClientFactory
) -> None:
    with make_client(repo) as client:
        for _ in range(3):
            assert client.post("/models/iris/predict", json=IRIS_ROW).status_code == 200
        assert client.post("/models/iris/predict", json={"bad": 1}).status_code == 422
        request_id = client.post("/models/iris/predict", json=IRIS_ROW).headers["x-request-id"]
        assert client.post(
            "/feedback", json={"request_id": request_id, "label": "setosa"}
        ).is_success
        status = client.get("/ui/status/iris")
    assert status.headers["cache-control"] == "no-store"
    body = status.json()
    assert body["name"] == "iris"
    assert [v["state"] for v in body["versions"]] == ["ready"]
    assert body["traffic"] is None
    assert body["outcomes"] is True
    live = body["live"]
    assert (live["requests"], live["rejected"], live["errors"], live["feedback"]) == (5, 1, 0, 1)
    assert live["latency_count"] == 5
    assert live["latency_sum"] > 0
    assert [v["variant"] for v in live["variants"]] == ["v1"]
    assert live["variants"][0]["requests"] == 5
    counts = [count for _, count in live["buckets"]]
    assert counts == sorted(counts)  # cumulative
    assert counts[-1] <= 5
    assert all(le != float("inf") for le, _ in live["buckets"])


def test_the_status_json_without_metrics(repo: Path, make_client: ClientFactory) -> None:
    with make_client(repo, metrics=False, outcomes=False) as client:
        body = client.get("/ui/status/iris").json()
    assert body["live"] is None
    assert body["outcomes"] is False


def test_with_inference_keys_the_status_json_needs_one(
    repo: Path, make_client: ClientFactory
) -> None:
    with make_client(repo, inference_key="k1,k2", admin_key="boss") as client:
        assert 'data-key="required"' in client.get("/").text  # the page shows a key field
        assert client.get("/ui/status/iris").status_code == 401
        for key in ("k2", "boss"):
            headers = {"Authorization": f"Bearer {key}"}
            assert client.get("/ui/status/iris", headers=headers).status_code == 200
        assert client.get("/ui/assets/common.js").status_code == 200  # assets hold no data


def test_ui_false_turns_the_pages_off_and_keeps_the_docs(
    repo: Path, make_client: ClientFactory
) -> None:
    with make_client(repo, ui=False) as client:
        for path in UI_ONLY:
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "http_404"
        assert client.get("/docs").status_code == 200
        assert client.get("/redoc").status_code == 200
        assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert client.post("/predict", json=IRIS_ROW).status_code == 200
