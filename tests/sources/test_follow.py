"""Following an alias in-process (the in-process MLflow registry, a TestClient server):
``follow: canary`` sends the new version through the card's canary, which completes or rolls
back by its bounds, ``follow: shadow`` has it shadow the serving version until a rollout promotes
it, and a version that fails to load keeps the old one serving without making
a strictly ready server unready."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from modelport.server.app import create_app
from modelport.settings import Settings
from modelport.traffic.state import request_rollout
from tests.helpers import IRIS_ROW
from tests.sources.conftest import MLFLOW_WARNINGS, LocalRegistry

pytestmark = MLFLOW_WARNINGS


def _register(local: LocalRegistry, name: str) -> tuple[int, int, int]:
    """Two good versions and one whose signature (3 columns) the model (4) contradicts."""
    registrar = local.registrar
    x, y = registrar.x, registrar.y
    good1 = registrar.sklearn(name, LogisticRegression(max_iter=500).fit(x, y))
    good2 = registrar.sklearn(name, LogisticRegression(C=0.05, max_iter=500).fit(x, y))
    broken = registrar.sklearn(name, LogisticRegression(max_iter=500).fit(x, y), columns=3)
    registrar.alias(name, "live", good1)
    return good1, good2, broken


@contextmanager
def _serving(models: Path | str) -> Iterator[TestClient]:
    settings = Settings(
        models=Path(models), registry_poll_interval=0.1, watch_interval=0.1, outcomes=False
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return found


def _version(client: TestClient, name: str) -> int:
    answer = client.post(f"/models/{name}/predict", json=IRIS_ROW)
    assert answer.status_code == 200, answer.text
    return int(answer.headers["x-model-version"])


def _model(client: TestClient, name: str) -> dict[str, Any]:
    (found,) = [m for m in client.get("/models").json()["models"] if m["name"] == name]
    return found


def _canary_card(tmp_path: Path, name: str, auto: dict[str, Any]) -> Path:
    """A repository whose card follows ``name@live`` through a two-step canary."""
    canary = {"baseline": 1, "version": 2, "steps": [50, 100], "auto": auto}
    card = {"source": f"models:/{name}@live", "follow": "canary", "traffic": {"canary": canary}}
    (tmp_path / "models" / name).mkdir(parents=True)
    (tmp_path / "models" / name / "modelport.yaml").write_text(yaml.safe_dump(card))
    return tmp_path / "models"


def test_follow_canary_steps_through_and_completes(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    good1, good2, _ = _register(local_registry, "canary-ok")
    auto = {"interval_s": 0.2, "min_requests": 3, "max_error_rate": 0.5}
    with _serving(_canary_card(tmp_path, "canary-ok", auto)) as client:
        assert {_version(client, "canary-ok") for _ in range(10)} == {good1}  # no canary yet
        local_registry.registrar.alias("canary-ok", "live", good2)
        canary = _until(lambda: _model(client, "canary-ok")["source"].get("canary"), "canary")
        assert (canary["baseline"], canary["version"], canary["step"]) == (good1, good2, 0)
        _until(lambda: _promoted(client, "canary-ok", good2), "promoted")
        assert {_version(client, "canary-ok") for _ in range(10)} == {good2}
        _until(lambda: _model(client, "canary-ok")["source"]["canary"] is None, "canary shown")


def _promoted(client: TestClient, name: str, version: int) -> bool:
    _version(client, name)  # the canary is judged on its own answers
    return bool(_model(client, name)["default_version"] == version)


def _rolled_back(client: TestClient, name: str) -> bool:
    _version(client, name)  # the canary is judged on its own answers
    events = client.get(f"/models/{name}").json().get("canary_events") or []
    return _model(client, name)["source"]["canary"] is None or any(
        e["verdict"] == "rollback" for e in events
    )


def test_follow_canary_rolls_back_out_of_bounds(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    good1, good2, _ = _register(local_registry, "canary-slow")
    auto = {"interval_s": 60, "min_requests": 3, "max_p99_ms": 0.001}  # no answer is that fast
    with _serving(_canary_card(tmp_path, "canary-slow", auto)) as client:
        local_registry.registrar.alias("canary-slow", "live", good2)
        _until(lambda: _model(client, "canary-slow")["source"].get("canary"), "canary")
        _until(lambda: _rolled_back(client, "canary-slow"), "rolled back")
        assert _model(client, "canary-slow")["default_version"] == good1
        assert {_version(client, "canary-slow") for _ in range(10)} == {good1}


def test_a_broken_version_keeps_the_old_one_and_readiness(
    local_registry: LocalRegistry,
) -> None:
    """Strict readiness (the default) counts models that cannot serve; a newer version that
    failed while the old one serves is a failed rollout, shown in /models, not an outage."""
    good1, _, broken = _register(local_registry, "follow-broken")
    with _serving("models:/follow-broken@live") as client:
        assert client.get("/ready").status_code == 200
        local_registry.registrar.alias("follow-broken", "live", broken)

        def failed() -> dict[str, Any] | None:
            versions = {v["version"]: v for v in _model(client, "follow-broken")["versions"]}
            mv = versions.get(broken)
            return mv if mv is not None and mv["state"] == "failed" else None

        assert "3 inputs but the model takes 4" in str(_until(failed, "broken tried"))
        assert client.get("/ready").status_code == 200
        assert {_version(client, "follow-broken") for _ in range(10)} == {good1}


def _shadow(client: TestClient, name: str, version: int, copies: int) -> bool:
    """The old version answers while ``version`` has got ``copies`` shadow copies."""
    assert _version(client, name) != version
    shadow = _model(client, name)["source"].get("shadow") or {}
    return shadow.get("version") == version and shadow.get("requests", 0) >= copies


def _loaded(client: TestClient, name: str) -> set[int]:
    return {v["version"] for v in _model(client, name)["versions"] if v["state"] == "ready"}


def test_follow_shadow_copies_traffic_until_a_rollout_promotes(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    good1, good2, _ = _register(local_registry, "shadow-ok")
    registrar = local_registry.registrar
    card = {"source": "models:/shadow-ok@live", "follow": "shadow"}
    card["traffic"] = {"shadow": {"version": 1, "fraction": 1.0}}  # a template: its version too
    (tmp_path / "models" / "shadow-ok").mkdir(parents=True)
    (tmp_path / "models" / "shadow-ok" / "modelport.yaml").write_text(yaml.safe_dump(card))
    with _serving(tmp_path / "models") as client:
        assert {_version(client, "shadow-ok") for _ in range(5)} == {good1}
        registrar.alias("shadow-ok", "live", good2)
        _until(lambda: _shadow(client, "shadow-ok", good2, copies=3), "shadow copies")
        assert _loaded(client, "shadow-ok") == {good1, good2}
        registrar.alias("shadow-ok", "live", good1)  # moved back: the shadow ends
        _until(lambda: _loaded(client, "shadow-ok") == {good1}, "shadow unloaded")
        assert _model(client, "shadow-ok")["source"]["shadow"] is None
        registrar.alias("shadow-ok", "live", good2)
        _until(lambda: _shadow(client, "shadow-ok", good2, copies=1), "shadowing again")
        request_rollout(tmp_path / "models", "shadow-ok", good2)  # `modelport rollout`
        _until(lambda: _promoted(client, "shadow-ok", good2), "promoted")
        _until(lambda: _model(client, "shadow-ok")["source"]["shadow"] is None, "shadow ended")
        assert {_version(client, "shadow-ok") for _ in range(5)} == {good2}
