"""Traffic policies over HTTP (in process): splits, stickiness, canary steps, shadow, keys."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.helpers import write_fake_model
from tests.traffic.test_rollout import ADMIN, KEY, ROW, add_version

SPLIT_90_10 = {"split": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}


def put_policy(client: TestClient, policy: object) -> dict[str, Any]:
    answer = client.put("/admin/models/m/traffic", json=policy, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def predict(client: TestClient, user: str | None = None, path: str = "/predict") -> tuple[str, str]:
    headers = {"X-User-Id": user} if user else {}
    answer = client.post(path, json=ROW, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-model-version"], answer.headers["x-model-variant"]


def test_a_card_split_is_sticky_per_user(tmp_path: Path, make_client: ClientFactory) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2), traffic=SPLIT_90_10)
    with make_client(tmp_path) as client:
        first = {f"u{i}": predict(client, f"u{i}") for i in range(400)}
        again = {f"u{i}": predict(client, f"u{i}") for i in range(400)}
        assert first == again
        counts = Counter(version for version, _ in first.values())
        assert 15 <= counts["2"] <= 70  # 40 expected; binomial sd 6
        assert set(first.values()) == {("1", "v1"), ("2", "v2")}


def test_without_a_key_requests_are_spread_at_random(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2))
    with make_client(tmp_path, admin_key=KEY) as client:
        assert predict(client) == ("2", "v2")  # no policy: the default, labelled v<version>
        put_policy(client, {"split": [{"version": 1, "weight": 1}, {"version": 2, "weight": 1}]})
        counts = Counter(predict(client)[0] for _ in range(200))
        assert 60 <= counts["1"] <= 140


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/models/m/predict", ROW),
        ("/predict/batch", {"instances": [ROW]}),
        ("/v1/models/m:predict", {"instances": [ROW]}),
        (
            "/v2/models/m/infer",
            {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]},
        ),
    ],
)
def test_every_unversioned_route_is_routed(
    tmp_path: Path, make_client: ClientFactory, path: str, body: object
) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2), default_version=2)
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, {"split": [{"version": 1, "weight": 1, "variant": "control"}]})
        answer = client.post(path, json=body)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-model-version"] == "1"
        assert answer.headers["x-model-variant"] == "control"


@pytest.mark.parametrize("path", ["/models/m/versions/2/predict", "/v2/models/m/versions/2/infer"])
def test_an_explicit_version_bypasses_the_policy(
    tmp_path: Path, make_client: ClientFactory, path: str
) -> None:
    write_fake_model(
        tmp_path, "m", versions=(1, 2), traffic={"split": [{"version": 1, "weight": 1}]}
    )
    body: object = ROW
    if path.startswith("/v2"):
        body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    with make_client(tmp_path) as client:
        for _ in range(20):
            answer = client.post(path, json=body, headers={"X-User-Id": "alice"})
            assert answer.headers["x-model-version"] == "2"
            assert answer.headers["x-model-variant"] == "v2"


@pytest.mark.parametrize(
    ("policy", "status", "needle"),
    [
        ({"split": [{"version": 7, "weight": 1}]}, 400, "version 7"),
        ({"shadow": {"version": 9}}, 400, "version 9"),
        ({"split": [{"version": 1, "weight": -1}]}, 422, "greater than or equal to 0"),
        ({"canary": {"baseline": 1, "version": 1}}, 422, "same version"),
        ({"spilt": []}, 422, "spilt"),
        ([1, 2], 422, "Input should be a JSON object"),
    ],
)
def test_bad_policies_answer_a_precise_4xx(
    tmp_path: Path, make_client: ClientFactory, policy: object, status: int, needle: str
) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2))
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, {"split": [{"version": 1, "weight": 1, "variant": "control"}]})
        answer = client.put("/admin/models/m/traffic", json=policy, headers=ADMIN)
        assert answer.status_code == status, answer.text
        assert needle in answer.text
        assert set(answer.json()) == {"error", "detail", "code"}
        bad_json = client.put("/admin/models/m/traffic", content=b"{", headers=ADMIN)
        assert bad_json.status_code == 400
        assert predict(client) == ("1", "control")  # the live policy is unchanged


def test_canary_steps_advance_then_promote(tmp_path: Path, make_client: ClientFactory) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2), default_version=1)
    users = [f"user-{i}" for i in range(300)]
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, {"canary": {"baseline": 1, "version": 2, "steps": [5, 50, 100]}})
        share = [sum(predict(client, u)[1] == "canary" for u in users) / len(users)]
        for _ in range(2):
            assert client.post("/admin/models/m/canary/advance", headers=ADMIN).status_code == 200
            share.append(sum(predict(client, u)[1] == "canary" for u in users) / len(users))
        assert 0.01 < share[0] < 0.15  # 5 % of 300 users: 15, sd about 3.8
        assert 0.35 < share[1] < 0.65
        assert share[2] == 1.0
        promoted = client.post("/admin/models/m/canary/advance", headers=ADMIN)
        assert promoted.status_code == 200
        assert promoted.json()["traffic"] is None
        assert promoted.json()["default_version"] == 2
        assert predict(client, "user-1") == ("2", "v2")
        abort = client.post("/admin/models/m/canary/abort", headers=ADMIN)
        assert abort.status_code == 409


def test_canary_abort_sends_everyone_back(tmp_path: Path, make_client: ClientFactory) -> None:
    write_fake_model(tmp_path, "m", versions=(1, 2), default_version=1)
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, {"canary": {"baseline": 1, "version": 2, "steps": [100]}})
        assert predict(client, "x") == ("2", "canary")
        assert client.post("/admin/models/m/canary/abort", headers=ADMIN).status_code == 200
        assert predict(client, "x") == ("1", "v1")


def shadow_stats(client: TestClient, requests: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        stats: dict[str, Any] = client.get("/admin/models/m", headers=ADMIN).json()["shadow"]
        if stats and stats["requests"] >= requests:
            return stats
        assert time.monotonic() < deadline, f"shadow copies never finished: {stats}"
        time.sleep(0.02)


def test_shadow_copies_are_recorded_never_returned(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,), default_version=1)
    add_version(folder, 2, classes=["a", "b"])
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, {"shadow": {"version": 2}})
        for _ in range(10):
            answer = client.post("/predict", json=ROW)
            assert answer.headers["x-model-version"] == "1"
            assert answer.json()["prediction"] in (0, 1)
        stats = shadow_stats(client, 10)
        assert stats["version"] == 2
        assert stats["errors"] == 0
        assert stats["agreement"] == 0.0  # labels a/b never equal 0/1
        assert stats["recent"][-1]["prediction"] == ["b"]


def test_a_failing_slow_shadow_never_affects_the_caller(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    folder = write_fake_model(tmp_path, "m", versions=(1,), default_version=1)
    add_version(folder, 2, delay_s=1.0, predict_error="shadow broke")
    with make_client(tmp_path, admin_key=KEY) as client:
        put_policy(client, {"shadow": {"version": 2}})
        for _ in range(3):
            answer = client.post("/predict", json=ROW)
            assert answer.status_code == 200
            assert answer.headers["x-model-version"] == "1"
        # the answers came back while every shadow copy was still running
        assert client.get("/admin/models/m", headers=ADMIN).json()["shadow"]["requests"] == 0
        stats = shadow_stats(client, 3)
        assert stats["errors"] == 3
        assert "shadow broke" in stats["recent"][-1]["error"]


def test_the_inference_key_protects_predictions_only(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    write_fake_model(tmp_path, "m")
    v2_body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    with make_client(tmp_path, inference_key="infer-key") as client:
        for path, body in [
            ("/predict", ROW),
            ("/models/m/versions/1/predict", ROW),
            ("/v1/models/m:predict", {"instances": [ROW]}),
            ("/v2/models/m/infer", v2_body),
        ]:
            refused = client.post(path, json=body)
            assert refused.status_code == 401, path
            assert refused.json()["code"] == "unauthorized"
            assert client.post(path, json=body, headers={"X-Api-Key": "wrong"}).status_code == 401
            ok = client.post(path, json=body, headers={"Authorization": "Bearer infer-key"})
            assert ok.status_code == 200, path
            assert client.post(path, json=body, headers={"X-Api-Key": "infer-key"}).is_success
        assert client.get("/health").status_code == 200
        assert client.get("/models").status_code == 200


def test_a_shadow_copy_never_overwrites_the_callers_request_info(tmp_path: Path) -> None:
    import asyncio

    import numpy as np

    from modelport.core import context
    from modelport.core.dataplane import DataPlane
    from modelport.core.registry import Registry
    from modelport.core.repository import scan
    from modelport.model.policy import TrafficPolicy
    from modelport.traffic.router import TrafficRouter

    write_fake_model(tmp_path, "m", versions=(1, 2), default_version=1)
    registry = Registry(scan(tmp_path))
    registry.load_all()
    plane = DataPlane(registry)
    traffic = TrafficRouter(registry, plane.infer)
    plane.router = traffic
    traffic.set_policy("m", TrafficPolicy.model_validate({"shadow": {"version": 2}}))
    seen: dict[str, object] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        model = plane.route("m")
        await plane.infer(model, np.array([[1.0, 2.0]]))
        await traffic.wait_shadows()  # the shadow has run to the end
        info = context.current()
        assert info is not None
        assert info.result is not None  # the caller's answer, not the shadow's (v2)
        seen.update(
            model=info.model,
            version=info.version,
            variant=info.variant,
            answered=info.result.version,
        )

    async def main() -> None:
        caller = context.RequestInfo("caller-1")
        with context.use(caller):
            await app(None, None, None)
        caller.release()
        assert plane.registry.get("m", 1).inflight == 0  # the request gave back what it held

    asyncio.run(main())
    assert seen == {"model": "m", "version": 1, "variant": "v1", "answered": 1}
    stats = traffic.shadows["m"]
    assert (stats.version, stats.requests, stats.errors) == (2, 1, 0)
    assert stats.recent[-1]["request_id"] == "caller-1"


def test_no_shadow_copy_goes_to_the_version_that_answers(tmp_path: Path) -> None:
    """Once a rollout promotes the shadowed version (a followed alias's shadow, until the next
    poll ends it), requests are not copied to the very version that answers them."""
    from modelport.core import context
    from modelport.core.registry import Registry
    from modelport.core.repository import scan
    from modelport.model.policy import TrafficPolicy
    from modelport.traffic.router import TrafficRouter

    write_fake_model(tmp_path, "m", versions=(1, 2), default_version=1)
    registry = Registry(scan(tmp_path))
    registry.load_all()
    traffic = TrafficRouter(registry, lambda *args: None)  # type: ignore[arg-type,return-value]
    for shadowed, copied in ((2, 2), (1, None)):
        traffic.set_policy("m", TrafficPolicy.model_validate({"shadow": {"version": shadowed}}))
        with context.use(context.RequestInfo("r", ())) as info:
            assert traffic.route("m").version == 1
            assert (None if info.shadow is None else info.shadow.version) == copied
