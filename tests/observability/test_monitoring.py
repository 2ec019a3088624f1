"""The monitoring stack's files: Prometheus rules (promtool), the dashboard, the compose file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from modelport.observability import dashboard
from tests.helpers import IRIS_ROW

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
METRIC = re.compile(r"\b((?:modelport|process)_[a-z_]+)\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus)")
    return found


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_pass_promtool_check() -> None:
    assert "SUCCESS: 12 rules found" in _run(promtool(), "check", "rules", RULES)


def test_rules_unit_tests_pass() -> None:
    assert "SUCCESS" in _run(
        promtool(), "test", "rules", ROOT / "tests/observability/monitoring/rules_test.yml"
    )


def test_prometheus_config_is_valid(tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]  # where compose mounts it
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    _run(promtool(), "check", "config", tmp_path / "prometheus.yml")


def exported_names(client: TestClient) -> set[str]:
    """Every sample name /metrics shows once each kind of request has been served."""
    client.post("/predict", json=IRIS_ROW)
    text = client.get("/metrics").text
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_dashboard_query_uses_only_metrics_we_export(client: TestClient) -> None:
    exported = exported_names(client)
    used = {name for query in dashboard.queries() for name in METRIC.findall(query)}
    assert used, "the dashboard queries nothing"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    rule_metrics = set(METRIC.findall(RULES.read_text()))
    assert rule_metrics <= exported, f"rules use {sorted(rule_metrics - exported)}"


def test_the_provisioned_dashboard_is_the_generated_one() -> None:
    path = DEPLOY / "grafana/dashboards/modelport.json"
    assert path.read_text() == dashboard.render(), (
        "run: python -m modelport.observability.dashboard " + str(path.relative_to(ROOT))
    )
    data = json.loads(path.read_text())
    assert data["uid"] == "modelport"
    titles = [p["title"] for p in data["panels"]]
    assert len(titles) == len(set(titles)) == len(dashboard.PANELS)
    for panel in data["panels"]:
        assert panel["targets"], panel["title"]
        # the datasource is a variable: an import asks for it, provisioning picks the default
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert all(t["expr"] for t in panel["targets"])
    assert [i["name"] for i in data["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    packaged = resources.files("modelport.deploy").joinpath("templates", "grafana-dashboard.json")
    assert packaged.read_text() == path.read_text()  # what `deploy compose` writes
    assert (DEPLOY / "prometheus/rules.yml").read_text() == (
        resources.files("modelport.deploy").joinpath("templates", "prometheus-rules.yml")
    ).read_text()
    provisioning = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert provisioning["datasources"][0]["uid"] == "prometheus"


def test_compose_file_is_valid_and_mounts_files_that_exist() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's package)")
    resolved = yaml.safe_load(_run(compose, "-f", DEPLOY / "compose.yaml", "config"))
    assert set(resolved["services"]) == {"modelport", "prometheus", "grafana"}
    for service in resolved["services"].values():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            assert Path(source).exists(), source
    scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["modelport:8000"]
