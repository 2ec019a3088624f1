"""gRPC in the deploy files (on: exposed everywhere it can be; off: nothing changes, the golden
files say so), and the state a restart loses, said or wired for every target."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelport.deploy import TARGETS, DeploySpec, render_target
from tests.deploy.test_deploy import BIN, SPEC, _crd_schema
from tests.deploy.test_platforms import knative_violations

GRPC = SPEC.model_copy(update={"grpc_port": 8081})
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def _k8s(spec: DeploySpec) -> tuple[dict[str, Any], dict[str, Any], str]:
    text = render_target("kubernetes", spec)["kubernetes.yaml"]
    deployment, service, _ = yaml.safe_load_all(text)
    return deployment["spec"]["template"]["spec"]["containers"][0], service, text


def test_kubernetes_exposes_grpc_as_h2c(tmp_path: Path) -> None:
    container, service, text = _k8s(GRPC)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8081}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELPORT_GRPC_PORT"] == "8081"
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert grpc == {
        "name": "grpc",
        "port": 8081,
        "targetPort": "grpc",
        "appProtocol": "kubernetes.io/h2c",
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"  # the default
    path = tmp_path / "kubernetes.yaml"
    path.write_text(text)
    tool = shutil.which("kubernetes-validate") or str(BIN / "kubernetes-validate")
    done = subprocess.run([tool, "--strict", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_grpc_probes_ask_grpc_health() -> None:
    container, _, _ = _k8s(GRPC.model_copy(update={"grpc_probes": True}))
    for probe in ("startupProbe", "readinessProbe"):  # SERVING only once the models are ready
        assert container[probe]["grpc"] == {"port": 8081}, probe
        assert "httpGet" not in container[probe]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    with pytest.raises(ValueError, match="needs grpc_port"):
        DeploySpec(**{**SPEC.model_dump(), "grpc_probes": True})
    with pytest.raises(ValueError, match="HTTP port too"):
        DeploySpec(**{**SPEC.model_dump(), "grpc_port": SPEC.port})


def kserve_admits(isvc: dict[str, Any], runtime: dict[str, Any], cluster_mode: str) -> list[str]:
    """KServe merges the InferenceService's container over the runtime's; in Serverless mode
    Knative's rules then apply to the merged container (one port, named h2c for gRPC)."""
    annotations = isvc["metadata"].get("annotations", {})
    mode = annotations.get("serving.kserve.io/deploymentMode", cluster_mode)
    (container,) = runtime["spec"]["containers"]
    model = isvc["spec"]["predictor"]["model"]
    ports = {p["containerPort"]: p for p in container.get("ports", [])}
    ports |= {p["containerPort"]: p for p in model.get("ports", [])}
    merged = {**container, "ports": list(ports.values())}
    if model["protocolVersion"] not in runtime["spec"]["protocolVersions"]:
        return [f"runtime does not speak {model['protocolVersion']}"]
    return knative_violations(merged) if mode == "Serverless" else []


def test_kserve_serves_grpc_v2_on_h2c_in_raw_deployment() -> None:
    files = render_target("kserve", GRPC)
    runtime = yaml.safe_load(files["servingruntime.yaml"])
    (container,) = runtime["spec"]["containers"]
    assert runtime["spec"]["protocolVersions"] == ["v2", "v1", "grpc-v2"]
    assert container["args"][-2:] == ["--grpc-port", "8081"]
    assert knative_violations(container) == []  # the runtime alone still suits Serverless
    isvc = yaml.safe_load(files["inferenceservice-grpc.yaml"])
    assert isvc["spec"]["predictor"]["model"]["ports"][0]["name"] == "h2c"
    bare = json.loads(json.dumps(isvc))
    bare["metadata"].pop("annotations")
    for mode in ("Serverless", "RawDeployment"):
        for name in ("inferenceservice.yaml", "inferenceservice-grpc.yaml"):
            assert kserve_admits(yaml.safe_load(files[name]), runtime, mode) == [], name
        # without the pin, two ports in Serverless mode: Knative refuses them
        assert bool(kserve_admits(bare, runtime, mode)) is (mode == "Serverless")
    schema = _crd_schema("serving.kserve.io_inferenceservices.yaml", "v1beta1")
    jsonschema.Draft7Validator(schema).validate(isvc)
    runtime_schema = _crd_schema("serving.kserve.io_servingruntimes.yaml", "v1alpha1")
    jsonschema.Draft7Validator(runtime_schema).validate(runtime)
    assert "inferenceservice-grpc.yaml" not in render_target("kserve", SPEC)


def test_docker_and_compose_expose_grpc(tmp_path: Path) -> None:
    dockerfile = render_target("docker", GRPC)["Dockerfile"]
    assert '"modelport[grpc]==' in dockerfile
    assert "    MODELPORT_GRPC_PORT=8081\n" in dockerfile
    assert "EXPOSE 8000 8081\n" in dockerfile
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    tool = shutil.which("hadolint") or str(BIN / "hadolint")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
    compose = yaml.safe_load(render_target("compose", GRPC)["compose.yaml"])
    assert compose["services"]["iris"]["ports"] == ["8000:8000", "8081:8081"]
    off = render_target("docker", SPEC)["Dockerfile"]
    assert "GRPC" not in off
    assert "EXPOSE 8000\n" in off


WIRED = SPEC.model_copy(update={"outcomes_secret": "shop-outcomes"})
# where each target says what a restart loses, or wires PostgreSQL: file -> what it must hold
LOST = {
    "docker": {"Dockerfile": "are lost when it"},
    "render": {"render.yaml": "are lost at each deploy or restart"},
    "railway": {"Dockerfile": "are lost when it"},  # railway.json is JSON: no comments
    "huggingface": {"README.md": "are lost then", "Dockerfile": "are lost when it"},
    "kubernetes": {"kubernetes.yaml": "Outcome recording is OFF"},
    "kserve": {"servingruntime.yaml": "Outcome recording is OFF"},
    "compose": {"compose.yaml": "`docker compose down -v` deletes them"},
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_target_says_what_a_restart_loses_or_wires_postgresql(target: str) -> None:
    for name, said in LOST[target].items():
        text = " ".join(render_target(target, SPEC)[name].replace("#", " ").split())
        assert said in text, name
        assert "MODELPORT_OUTCOMES_URL" in text or "--outcomes-secret" in text, name
    wired = render_target(target, WIRED)
    if "Dockerfile" in wired:  # the image gets the driver
        assert '"modelport[postgres]==' in wired["Dockerfile"]
    if target == "render":
        env = yaml.safe_load(wired["render.yaml"])["services"][0]["envVars"]
        assert {"key": "MODELPORT_OUTCOMES_URL", "sync": False} in env  # asked at creation
    elif target == "compose":
        service = yaml.safe_load(wired["compose.yaml"])["services"]["iris"]
        url = service["environment"]["MODELPORT_OUTCOMES_URL"]
        assert re.fullmatch(r"\$\{MODELPORT_OUTCOMES_URL:\?.+\}", url)
    elif target == "huggingface":
        assert "go to PostgreSQL: add a secret `MODELPORT_OUTCOMES_URL`" in wired["README.md"]
    elif target in ("docker", "railway"):
        assert "go to PostgreSQL: set MODELPORT_OUTCOMES_URL" in wired["Dockerfile"]
    else:  # a cluster: the URL comes from the Secret
        text = wired["kubernetes.yaml" if target == "kubernetes" else "servingruntime.yaml"]
        assert "secretKeyRef:\n" in text
        assert "name: shop-outcomes\n" in text


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_every_deploy_page_says_what_a_restart_loses_and_how_to_keep_it(page: str) -> None:
    text = " ".join((DOCS / page).read_text().split())
    state = text.split("**State", 1)[1]
    assert "lost" in state, page
    assert "--outcomes-secret" in state, page
