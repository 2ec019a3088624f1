"""Deploy images built and run the way their platform runs them, on the real engine.

One repository (a DataFrame pipeline with a string column) is built once with `modelport build
--grpc-port`: its image must install pandas and pass its own model check, then serve under the
generated Kubernetes pod spec's rules (read-only root, the emptyDirs as tmpfs, the manifest's uid
and env), gRPC health answering SERVING on the manifest's gRPC port. The compose target's service
runs that image as compose runs it, and promtool checks the stack's Prometheus files.
The same repository plus a model whose module the image lacks must fail at build time, naming
it. The Hugging Face Space's image must answer as uid 1000. The builds share their first stage.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx2 as httpx
import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelport.cli.examples import train_example
from modelport.deploy.context import spec_for, write_target
from modelport.hints import docker_run
from modelport.model.integrity import pin_artifact
from modelport.model.pins import Pins
from tests.container.test_image import ENV, docker, engine, wait_ready
from tests.helpers import IRIS_ROW, free_port

pytestmark = [
    pytest.mark.container,
    pytest.mark.timeout(1500),
]
__all__ = ["engine"]  # the engine fixture, shared with test_image

MODELPORT = str(Path(sys.executable).parent / "modelport")
ROW = {"city": "tainan", "amount": 12.5}
GRPC = 8081  # the image's; each run gets a free port instead (host network)


def _pipeline() -> Any:
    frame = pd.DataFrame(
        {"city": ["taipei", "tainan", "kaohsiung"] * 10, "amount": np.arange(30.0)}
    )
    columns = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["city"]), (StandardScaler(), ["amount"])
    )
    return make_pipeline(columns, LogisticRegression()).fit(frame, ["no", "yes", "yes"] * 10)


def _save(model: Any, path: Path) -> None:
    path.parent.mkdir(parents=True)
    joblib.dump(model, path)
    pin_artifact(path, Pins.default(path.parents[2]))  # <repo>/<model>/<version>/<file>


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("basket-shop")
    _save(_pipeline(), root / "models" / "basket" / "1" / "model.joblib")
    train_example("iris", root / "models")  # a second model: the image serves a repository
    return root


def _build(repo: Path, tag: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MODELPORT, "build", str(repo), "-t", tag, "--out", str(out), "--grpc-port", str(GRPC)],
        capture_output=True,
        text=True,
        env={**ENV, "HOME": str(out.parent), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        timeout=1200,
        check=False,
    )


@pytest.fixture(scope="module")
def built(engine: None, project: Path) -> Iterator[subprocess.CompletedProcess[str]]:
    """``modelport build``, which runs ``hints.docker_build``'s command (on the host network)."""
    done = _build(project / "models", "basket:test", project / "ctx")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield done
    docker("rmi", "-f", "basket:test")


@pytest.fixture(scope="module")
def image(built: subprocess.CompletedProcess[str]) -> str:
    return "basket:test"


def test_the_printed_docker_run_serves_the_image(
    built: subprocess.CompletedProcess[str], image: str
) -> None:
    """The command ``modelport build`` prints once the image is built, run as printed but for
    the ports: the engine here has no bridge network, so each ``-p P:P`` becomes the host's
    network with ``PORT`` and ``MODELPORT_GRPC_PORT`` on free ports (and ``-d``, to poll it)."""
    line = next(x for x in built.stderr.splitlines() if x.startswith(f"Built {image}: "))
    words = shlex.split(line.removeprefix(f"Built {image}: "))
    assert words == docker_run(image, 8000, GRPC)
    port, grpc_port = free_port(), free_port()
    at = words.index("-p")
    assert words[at : at + 4] == ["-p", "8000:8000", "-p", f"{GRPC}:{GRPC}"]
    moved = ["-e", f"PORT={port}", "-e", f"MODELPORT_GRPC_PORT={grpc_port}"]
    container = docker(*words[1:at], "-d", "--network", "host", *moved, *words[at + 4 :])
    try:
        url = wait_ready(port, container)
        assert httpx.post(f"{url}/models/iris/predict", json=IRIS_ROW).json()["prediction"] == (
            "setosa"
        )
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, env=ENV, check=False)


def grpc_status(port: int) -> str:
    """grpc.health.v1's answer for the whole server, as Kubernetes' gRPC probe asks it."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def _run_as_the_pod(image: str, pod: dict[str, Any], ports: dict[str, int]) -> str:
    """docker run with the pod spec's uid, env (its ports moved to ``ports``), read-only root and
    emptyDirs (as tmpfs)."""
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    args = [
        "run",
        "-d",
        "--network",
        "host",
        "--read-only",
        "--user",
        str(pod["securityContext"]["runAsUser"]),
    ]
    for mount in container["volumeMounts"]:
        args += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777"]
    for env in container["env"]:
        value = str(ports.get(env["name"], env["value"]))
        args += ["-e", f"{env['name']}={value}"]
    return docker(*args, image)


def test_dataframe_image_installs_pandas_and_serves_as_the_kubernetes_pod(
    image: str, project: Path, tmp_path: Path
) -> None:
    dockerfile = (project / "ctx" / "Dockerfile").read_text()
    assert '"pandas==' in dockerfile
    docker("run", "--rm", "--network", "host", image, "python", "-c", "import pandas")
    spec = spec_for(project / "models", grpc_port=GRPC, grpc_probes=True)
    write_target("kubernetes", project / "models", tmp_path / "k8s", spec)
    manifest = next(yaml.safe_load_all((tmp_path / "k8s" / "kubernetes.yaml").read_text()))
    pod = manifest["spec"]["template"]["spec"]
    port, grpc_port = free_port(), free_port()
    assert pod["containers"][0]["readinessProbe"]["grpc"]["port"] == GRPC
    container = _run_as_the_pod(image, pod, {"PORT": port, "MODELPORT_GRPC_PORT": grpc_port})
    try:
        url = wait_ready(port, container)
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        assert grpc_status(grpc_port) == "SERVING"  # the readiness probe's question
        models = {m["name"] for m in httpx.get(f"{url}/models").json()["models"]}
        assert models == {"basket", "iris"}
        iris = httpx.post(f"{url}/models/iris/predict", json=IRIS_ROW).json()
        assert iris["prediction"] == "setosa"
        labels = docker("inspect", "-f", "{{json .Config.Labels}}", image)
        assert "basket=" in labels
        assert "iris=" in labels
        for _ in range(20):
            reply = httpx.post(f"{url}/models/basket/predict", json=ROW)
            assert reply.status_code == 200, reply.text
        scrape_path = manifest["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
        for _ in range(3):  # every scrape counts both workers' requests
            text = httpx.get(f"{url}{scrape_path}").text
            counted = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("modelport_requests_total{") and 'model="basket"' in line
            )
            assert counted == 20
        pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        docker("exec", container, *pre_stop[:-1], "0")  # the drain command exists in the image
        docker("stop", "-t", "30", container)
        assert docker("inspect", "-f", "{{.State.ExitCode}}", container) == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, env=ENV, check=False)


def test_a_model_the_image_cannot_load_fails_the_build_with_the_reason(
    image: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "models"
    _save(_pipeline(), repo / "basket" / "1" / "model.joblib")
    (tmp_path / "acme_features.py").write_text(
        textwrap.dedent(
            """
            from sklearn.base import BaseEstimator, TransformerMixin

            class Doubler(TransformerMixin, BaseEstimator):
                def fit(self, x, y=None):
                    return self

                def transform(self, x):
                    return x * 2
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import acme_features

    model = make_pipeline(acme_features.Doubler(), LogisticRegression())
    _save(model.fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5), repo / "custom" / "1" / "m.joblib")
    del sys.modules["acme_features"]
    done = _build(repo, "custom-shop:test", tmp_path / "ctx")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "names the module 'acme_features'" in " ".join(output.split())  # warned up front
    reason = " ".join(done.stderr.split())
    assert "the image was not built" in reason
    assert "custom v1 failed" in reason
    assert "acme_features" in reason


def test_huggingface_space_image_answers_as_uid_1000(
    image: str, project: Path, tmp_path: Path
) -> None:
    space = tmp_path / "space"  # gRPC on as in the image: the builds share their first stage
    spec = spec_for(project / "models", grpc_port=GRPC)
    write_target("huggingface", project / "models", space, spec)
    docker("build", "--network", "host", "-t", "basket-space:test", str(space), timeout=1200)
    port = free_port()
    container = docker(
        "run",
        "-d",
        "--network",
        "host",
        "--user",
        "1000",
        "-e",
        f"PORT={port}",
        "-e",
        f"MODELPORT_GRPC_PORT={free_port()}",
        "basket-space:test",
    )
    try:
        url = wait_ready(port, container)
        assert httpx.post(f"{url}/models/basket/predict", json=ROW).status_code == 200
        root = httpx.get(f"{url}/")  # the Space opens on the playground
        assert root.status_code == 200
        assert "text/html" in root.headers["content-type"]
        assert "script-src 'self'" in root.headers["content-security-policy"]
        assert docker("exec", container, "id", "-u") == "1000"
        docker("exec", container, "sh", "-c", 'touch "$HOME/written" /models/.modelport/written')
        env = docker("inspect", "-f", "{{json .Config.Env}}", "basket-space:test")
        assert "PORT=7860" in env  # the Space card's app_port
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, env=ENV, check=False)
        subprocess.run(
            ["docker", "rmi", "-f", "basket-space:test"], capture_output=True, env=ENV, check=False
        )


def _compose(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["docker-compose", *args], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert done.returncode == 0 or not check, f"docker-compose {args}\n{done.stderr}"
    return done.stdout.strip()


def test_compose_service_runs_as_compose_runs_it(image: str, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "stack"
    spec = spec_for(project / "models", image=image, grpc_port=GRPC)
    write_target("compose", project / "models", out, spec)
    prometheus = out / "prometheus"
    for check in (["config", prometheus / "prometheus.yml"], ["rules", prometheus / "rules.yml"]):
        done = subprocess.run(["promtool", "check", *map(str, check)], capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr
    # Only the modelport service (Prometheus' and Grafana's images cannot be pulled here), as
    # compose resolves it, moved to the host network like every container of these tests, on
    # free ports (compose refuses published ports on the host network, so they go).
    port, grpc_port = free_port(), free_port()
    config = yaml.safe_load(_compose("-f", str(out / "compose.yaml"), "config"))
    service = config["services"][spec.name]
    assert service.pop("ports")  # what the host network makes moot
    service["network_mode"] = "host"
    service["environment"] |= {"PORT": str(port), "MODELPORT_GRPC_PORT": str(grpc_port)}
    config["services"] = {spec.name: service}
    (out / "compose.local.yaml").write_text(yaml.safe_dump(config))
    files = ["-p", f"mp{port}", "-f", str(out / "compose.local.yaml")]
    try:
        _compose(*files, "up", "-d", "--no-build", spec.name)
        container = _compose(*files, "ps", "-q", spec.name)
        url = wait_ready(port, container)
        assert httpx.post(f"{url}/models/basket/predict", json=ROW).status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        assert "modelport_requests_total{" in metrics
        assert grpc_status(grpc_port) == "SERVING"
        mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}", container)
        assert "/models/.modelport" in mounts.split()  # the outcomes volume
    finally:
        _compose(*files, "down", "-v", check=False)
