"""Deploy files: golden files for one fixed spec, and each file checked by a real validator."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelport.deploy import TARGETS, DeploySpec, render_target
from modelport.deploy.context import spec_for, write_target
from tests.helpers import write_fake_model

GOLDEN = Path(__file__).with_name("golden")
SHARED = next(
    (
        p
        for p in (
            Path(os.environ.get("MODELPORT_SHARED", "/nonexistent")),
            Path(__file__).resolve().parents[3] / "shared",
            Path("/work/shared"),
        )
        if (p / "kserve-crds").is_dir()
    ),
    Path(__file__).resolve().parents[3] / "shared",
)
BIN = Path(sys.executable).parent
SPEC = DeploySpec(name="iris", image="iris-api:1.0", models={"iris": "ab" * 32})


@pytest.mark.parametrize("target", list(TARGETS))
def test_golden_files(target: str) -> None:
    own = {name for name, _ in TARGETS[target]} | (
        {"Dockerfile"} if target == "huggingface" else set()
    )
    for name, content in render_target(target, SPEC).items():
        if name not in own:  # the docker target's files, checked once under docker/
            continue
        golden = GOLDEN / target / name
        if os.environ.get("MODELPORT_UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(content)
        assert content == golden.read_text(), f"{golden} differs; MODELPORT_UPDATE_GOLDEN=1 updates"


def test_kubernetes_manifests_pass_strict_validation(tmp_path: Path) -> None:
    path = tmp_path / "kubernetes.yaml"
    path.write_text(render_target("kubernetes", SPEC)["kubernetes.yaml"])
    tool = shutil.which("kubernetes-validate") or str(BIN / "kubernetes-validate")
    done = subprocess.run(
        [tool, "--strict", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(path.read_text())]
    assert kinds == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    pod = next(yaml.safe_load_all(path.read_text()))["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def _strict(schema: Any) -> Any:
    """A CRD schema as Draft 7 JSON Schema that also rejects misspelt keys."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


@functools.cache  # a CRD takes seconds to parse; the validators never change it
def _crd_schema(file: str, version: str) -> Any:
    path = SHARED / "kserve-crds" / file
    if not path.is_file():
        pytest.skip(f"KServe CRDs not found at {path.parent} (set MODELPORT_SHARED)")
    crd = yaml.safe_load(path.read_text())
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return _strict(served["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize(
    ("file", "crd", "version"),
    [
        ("servingruntime.yaml", "serving.kserve.io_servingruntimes.yaml", "v1alpha1"),
        ("inferenceservice.yaml", "serving.kserve.io_inferenceservices.yaml", "v1beta1"),
        ("inferenceservice-canary.yaml", "serving.kserve.io_inferenceservices.yaml", "v1beta1"),
    ],
)
def test_kserve_manifests_match_the_crds(file: str, crd: str, version: str) -> None:
    manifest = yaml.safe_load(render_target("kserve", SPEC)[file])
    jsonschema.Draft7Validator(_crd_schema(crd, version)).validate(manifest)
    bad = json.loads(json.dumps(manifest))
    bad["spec"]["predictorr" if "predictor" in bad["spec"] else "containerz"] = {}
    with pytest.raises(jsonschema.ValidationError):  # the check does catch a misspelt key
        jsonschema.Draft7Validator(_crd_schema(crd, version)).validate(bad)


def test_kserve_canary_splits_traffic() -> None:
    canary = yaml.safe_load(render_target("kserve", SPEC)["inferenceservice-canary.yaml"])
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    runtime = yaml.safe_load(render_target("kserve", SPEC)["servingruntime.yaml"])
    assert runtime["spec"]["protocolVersions"] == ["v2", "v1"]


def test_render_blueprint_leaves_the_command_to_the_image() -> None:
    service = yaml.safe_load(render_target("render", SPEC)["render.yaml"])["services"][0]
    assert service["runtime"] == "docker"
    assert service["healthCheckPath"] == "/ready"
    assert "dockerCommand" not in service  # the image's `modelport serve` reads PORT itself
    keys = {v["key"] for v in service["envVars"]}
    assert "MODELPORT_ACCESS_LOG" not in keys


def test_railway_start_command_needs_no_shell() -> None:
    config = json.loads(render_target("railway", SPEC)["railway.json"])
    assert config["build"]["builder"] == "DOCKERFILE"
    assert config["deploy"]["healthcheckPath"] == "/ready"
    assert "$" not in config["deploy"]["startCommand"]


def test_huggingface_space_runs_as_uid_1000_with_a_home() -> None:
    files = render_target("huggingface", SPEC)
    front = yaml.safe_load(files["README.md"].split("---")[1])
    assert front["sdk"] == "docker"
    assert front["app_port"] == 7860
    dockerfile = files["Dockerfile"]
    assert "PORT=7860" in dockerfile
    assert "useradd --uid 1000 --user-group --create-home --home-dir /home/user" in dockerfile
    assert "USER 1000" in dockerfile
    assert "HOME=/home/user" in dockerfile
    assert "filter=lfs" in files[".gitattributes"]


@pytest.mark.parametrize("extras", [[], ["lightgbm", "onnx"]])
def test_generated_dockerfile_is_hadolint_clean(tmp_path: Path, extras: list[str]) -> None:
    path = tmp_path / "Dockerfile"
    dockerfile = render_target("docker", SPEC.model_copy(update={"extras": extras}))["Dockerfile"]
    path.write_text(dockerfile)
    tool = shutil.which("hadolint") or str(BIN / "hadolint")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
    # LightGBM needs the OpenMP runtime in the image; nothing else needs apt
    assert ("libgomp1" in dockerfile) is ("lightgbm" in extras)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Not_A_DNS_Name"), ("cpu_request", "lots"), ("canary_percent", 100), ("port", 0)],
)
def test_spec_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        DeploySpec(**{**SPEC.model_dump(), field: value})


def test_write_target_builds_a_context(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_fake_model(repo, "a")
    write_fake_model(repo, "b", runtime="onnx")
    spec = spec_for(repo, name="shop")
    assert set(spec.models) == {"a", "b"}
    assert spec.extras == ["onnx"]
    out = tmp_path / "ctx"
    write_target("render", repo, out, spec)
    assert (out / "models" / "a" / "1" / "model.fake").is_file()
    assert len(list((out / "wheels").glob("modelport-*.whl"))) == 1
    assert 'pip install --find-links /wheels "modelport[onnx]==' in (out / "Dockerfile").read_text()
