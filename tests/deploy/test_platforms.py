"""Each platform's rules, simulated: the generated start command run the way the platform runs
it, Knative's and KServe's checks, Kubernetes' HPA and drain, Spaces' LFS rule, compose."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from modelport.cli.examples import train_example
from modelport.deploy import DeploySpec, render_target
from modelport.deploy.context import spec_for, write_target
from modelport.errors import ConfigError
from tests.helpers import IRIS_ROW, free_port

BIN = Path(sys.executable).parent
KNATIVE_RESERVED = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("project") / "models"
    train_example("iris", path)
    return path


def image_env(dockerfile: str) -> dict[str, str]:
    """The runtime stage's ENV, as the container sees it."""
    joined = dockerfile.replace("\\\n", " ")
    runtime = joined.split(" AS runtime", 1)[1]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, value = pair.split("=", 1)
                env[key] = value.replace("$PATH", os.environ["PATH"])
    return env


def image_cmd(dockerfile: str) -> list[str]:
    line = next(x for x in dockerfile.splitlines() if x.startswith("CMD "))
    argv: list[str] = json.loads(line[4:])  # exec form: no shell in between
    return argv


@pytest.fixture
def start() -> Iterator[Any]:
    """Start argv with no shell, as the platform would; stop it after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def run(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        argv = [str(BIN / argv[0]) if (BIN / argv[0]).exists() else argv[0], *argv[1:]]
        proc = subprocess.Popen(argv, env=env, shell=False, start_new_session=True)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.1)


def serves_with_metrics_of_every_worker(url: str, requests: int = 20) -> None:
    for _ in range(requests):
        assert httpx.post(f"{url}/predict", json=IRIS_ROW).status_code == 200
    for _ in range(3):
        text = httpx.get(f"{url}/metrics").text
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("modelport_requests_total{") and 'model="iris"' in line
        )
        assert counted == requests


@pytest.mark.e2e
@pytest.mark.parametrize("platform", ["railway", "render"])
def test_the_start_command_runs_without_a_shell_on_the_platforms_port(
    platform: str, repo: Path, start: Any, tmp_path: Path
) -> None:
    files = render_target(platform, spec_for(repo))
    if platform == "railway":  # Railway runs startCommand in exec form: no $VAR expansion
        argv = shlex.split(json.loads(files["railway.json"])["deploy"]["startCommand"])
    else:  # Render runs the image's CMD when render.yaml gives no dockerCommand
        assert "dockerCommand" not in yaml.safe_load(files["render.yaml"])["services"][0]
        argv = image_cmd(files["Dockerfile"])
    assert not any("$" in arg for arg in argv)
    port = free_port()
    env = {**image_env(files["Dockerfile"]), "MODELPORT_MODELS": str(repo), "PORT": str(port)}
    env["HOME"] = str(tmp_path)  # the image's home, here
    assert env["WEB_CONCURRENCY"] == "2"
    proc = start(argv, env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    serves_with_metrics_of_every_worker(url)


def knative_violations(container: dict[str, Any]) -> list[str]:
    """What Knative Serving's webhook refuses in a container (the rules KServe's Serverless
    mode runs under): reserved env names, more than one port, probes on another port."""
    env = container.get("env", [])
    found = [f"env {e['name']} is reserved" for e in env if e["name"] in KNATIVE_RESERVED]
    ports = [p["containerPort"] for p in container.get("ports", [])]
    if len(ports) > 1:
        found.append("more than one port")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        port = container.get(probe, {}).get("httpGet", {}).get("port")
        if port is not None and ports and port != ports[0]:
            found.append(f"{probe} on port {port}, not {ports[0]}")
    return found


def test_kserve_runtime_passes_knatives_rules_and_is_secured(repo: Path) -> None:
    runtime = yaml.safe_load(render_target("kserve", spec_for(repo))["servingruntime.yaml"])
    (container,) = runtime["spec"]["containers"]
    assert knative_violations(container) == []
    assert knative_violations({**container, "env": [{"name": "PORT", "value": "1"}]})
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


@pytest.mark.e2e
def test_kserve_runtime_answers_under_the_inferenceservice_name(
    repo: Path, start: Any, tmp_path: Path
) -> None:
    """The pickled model loads from the storage initializer's copy, trusted by the image's
    pins (without ``MODELPORT_PIN_FILE`` it looked for them beside /mnt/models, and refused)."""
    files = render_target("kserve", spec_for(repo))
    isvc = yaml.safe_load(files["inferenceservice.yaml"])["metadata"]["name"]
    (container,) = yaml.safe_load(files["servingruntime.yaml"])["spec"]["containers"]
    port = free_port()
    # KServe fills {{.Name}}; the storage initializer copies the models, and only them, into
    # /mnt/models; the image holds the pins at /modelport.lock; Knative sets its env
    mnt = tmp_path / "mnt" / "models"
    shutil.copytree(repo, mnt, ignore=shutil.ignore_patterns(".modelport"))
    image = {"/mnt/models": str(mnt), "/modelport.lock": str(repo.parent / "modelport.lock")}
    argv = [{**image, "{{.Name}}": isvc, "8080": str(port)}.get(a, a) for a in container["args"]]
    env = {e["name"]: image.get(e["value"], e["value"]) for e in container["env"]}
    env |= {"PATH": os.environ["PATH"], "PORT": "8080", "K_SERVICE": isvc, "K_REVISION": "r1"}
    env |= {"WEB_CONCURRENCY": "1"}
    proc = start(argv, env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    assert httpx.get(f"{url}/v2/models/{isvc}/ready").status_code == 200
    body = {
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in IRIS_ROW.items()
        ]
    }
    assert httpx.post(f"{url}/v2/models/{isvc}/infer", json=body).status_code == 200


def kserve_admits(isvc: dict[str, Any], cluster_mode: str) -> bool:
    """KServe serves canaryTrafficPercent in Serverless mode only (the annotation, else the
    cluster's default deployment mode)."""
    annotations = isvc["metadata"].get("annotations", {})
    mode = annotations.get("serving.kserve.io/deploymentMode", cluster_mode)
    return "canaryTrafficPercent" not in isvc["spec"]["predictor"] or mode == "Serverless"


@pytest.mark.parametrize("cluster_mode", ["Serverless", "RawDeployment"])
def test_kserve_canary_pins_serverless_mode(repo: Path, cluster_mode: str) -> None:
    files = render_target("kserve", spec_for(repo))
    for name in ("inferenceservice.yaml", "inferenceservice-canary.yaml"):
        assert kserve_admits(yaml.safe_load(files[name]), cluster_mode), name
    bare = yaml.safe_load(files["inferenceservice-canary.yaml"])
    bare["metadata"].pop("annotations")
    assert kserve_admits(bare, cluster_mode) is (cluster_mode == "Serverless")


def test_kserve_refuses_a_service_name_that_is_no_model(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="named after the model"):
        write_target("kserve", repo, tmp_path / "k", spec_for(repo, name="shop"))


def test_kubernetes_rules(repo: Path) -> None:
    spec = spec_for(repo)
    docs = list(yaml.safe_load_all(render_target("kubernetes", spec)["kubernetes.yaml"]))
    deployment, _, hpa = docs
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]  # the HPA owns it; apply would fight it
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"/tmp", env["PROMETHEUS_MULTIPROC_DIR"]} <= mounts  # what the server writes
    drain = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert drain + int(env["MODELPORT_GRACEFUL_TIMEOUT"]) < pod["terminationGracePeriodSeconds"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]
    assert env["MODELPORT_OUTCOMES"] == "false"  # read-only models, several replicas: said so
    assert "Outcome recording is OFF" in render_target("kubernetes", spec)["kubernetes.yaml"]


@pytest.mark.parametrize("target", ["kubernetes", "kserve"])
def test_outcomes_go_to_postgresql_from_a_secret(repo: Path, target: str) -> None:
    spec = spec_for(repo, outcomes_secret="shop-outcomes")
    files = render_target(target, spec)
    text = files["kubernetes.yaml" if target == "kubernetes" else "servingruntime.yaml"]
    manifest = next(yaml.safe_load_all(text))
    if target == "kubernetes":
        container = manifest["spec"]["template"]["spec"]["containers"][0]
    else:
        container = manifest["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert "MODELPORT_OUTCOMES" not in env
    ref = env["MODELPORT_OUTCOMES_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "shop-outcomes", "key": "url"}
    assert '"modelport[postgres]==' in render_target("docker", spec)["Dockerfile"]


def test_spaces_push_every_binary_file_through_lfs(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "space"
    write_target("huggingface", repo, out, spec_for(repo))
    subprocess.run(["git", "init", "-q", str(out)], check=True)
    binaries = [
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and ".git" not in p.parts and b"\0" in p.read_bytes()[:8000]
    ]
    assert any(b.endswith(".joblib") for b in binaries)
    assert any(b.endswith(".whl") for b in binaries)
    done = subprocess.run(
        ["git", "-C", str(out), "check-attr", "filter", "--", *binaries],
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(line.endswith(": filter: lfs") for line in done.stdout.splitlines()), done.stdout


def test_compose_brings_up_the_service_prometheus_and_grafana(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "stack"
    spec = spec_for(repo)
    write_target("compose", repo, out, spec)
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is installed by .ci/run"
    done = subprocess.run(
        [tool, "-f", str(out / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert set(config["services"]) == {spec.name, "prometheus", "grafana"}
    assert config["services"][spec.name]["image"] == f"{spec.name}:latest"
    scrape = yaml.safe_load((out / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == [f"{spec.name}:8000"]
    dashboard = json.loads((out / "grafana" / "dashboards" / "modelport.json").read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for path in ("prometheus/rules.yml", "grafana/provisioning/datasources/prometheus.yml"):
        assert (out / path).is_file()


def test_names_follow_the_service_never_models(tmp_path: Path) -> None:
    repo = tmp_path / "acme-shop" / "models"
    train_example("iris", repo)
    assert spec_for(repo).name == "iris"  # the single model
    train_example("wine", repo)
    spec = spec_for(repo)
    assert (spec.name, spec.image) == ("acme-shop", "acme-shop:latest")  # the project folder
    assert spec_for(repo, name="Shop API").name == "shop-api"
    rendered = render_target("kubernetes", spec)["kubernetes.yaml"]
    assert "name: models" not in rendered


def test_spec_records_what_the_files_need() -> None:
    spec = DeploySpec(
        name="x", image="x:1", models={}, packages=["pandas==2.2.3"], extras=["xgboost"]
    )
    dockerfile = render_target("docker", spec)["Dockerfile"]
    assert 'pip install --find-links /wheels "modelport[xgboost]==' in dockerfile
    assert '"pandas==2.2.3"' in dockerfile
    assert "modelport validate /models" in dockerfile
