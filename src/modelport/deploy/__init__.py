"""Deploy files for a model repository, rendered from one typed spec and the templates shipped
in ``modelport/deploy/templates``: a Docker build context, Render, Railway, Hugging Face Spaces,
Kubernetes, KServe, and a compose stack with Prometheus and Grafana.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelport._version import __version__
from modelport.deploy.parts import grpc_values, outcome_values

__all__ = ["TARGETS", "DeploySpec", "Target", "default_name", "render_target"]

Target = Literal["docker", "render", "railway", "huggingface", "kubernetes", "kserve", "compose"]

# target -> (output file name, template name)
TARGETS: dict[str, list[tuple[str, str]]] = {
    "docker": [("Dockerfile", "Dockerfile"), (".dockerignore", "dockerignore")],
    "render": [("render.yaml", "render.yaml")],
    "railway": [("railway.json", "railway.json")],
    "huggingface": [
        ("README.md", "huggingface-README.md"),
        (".gitattributes", "huggingface-gitattributes"),
    ],
    "kubernetes": [("kubernetes.yaml", "kubernetes.yaml")],
    "kserve": [
        ("servingruntime.yaml", "kserve-servingruntime.yaml"),
        ("inferenceservice.yaml", "kserve-inferenceservice.yaml"),
        ("inferenceservice-canary.yaml", "kserve-inferenceservice-canary.yaml"),
        ("inferenceservice-grpc.yaml", "kserve-inferenceservice-grpc.yaml"),
    ],
    "compose": [
        ("compose.yaml", "compose.yaml"),
        ("prometheus/prometheus.yml", "compose-prometheus.yml"),
        ("prometheus/rules.yml", "prometheus-rules.yml"),
        ("grafana/provisioning/datasources/prometheus.yml", "grafana-datasource.yml"),
        ("grafana/provisioning/dashboards/modelport.yml", "grafana-dashboards.yml"),
        ("grafana/dashboards/modelport.json", "grafana-dashboard.json"),
    ],
}
# Platforms that build the repository's Dockerfile get the Docker files too.
WITH_DOCKER = {"render", "railway", "huggingface", "compose"}
# Templates copied as they are (their own ``$`` syntax is Prometheus' and Grafana's).
VERBATIM = {"prometheus-rules.yml", "grafana-datasource.yml", "grafana-dashboards.yml"}
VERBATIM |= {"grafana-dashboard.json"}
# Templates written only when gRPC is on.
GRPC_ONLY = {"kserve-inferenceservice-grpc.yaml"}
# Templates whose outcome note (and env) depend on --outcomes-secret.
_OUTCOMES = {"Dockerfile", "render.yaml", "compose.yaml", "huggingface-README.md"}
_OUTCOMES |= {"kubernetes.yaml", "kserve-servingruntime.yaml"}
# Hugging Face Spaces run the container as uid 1000 and route to the Space card's app_port.
SPACES_UID = 1000
SPACES_PORT = 7860

_DNS = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi)?$"


class DeploySpec(BaseModel):
    """Everything the deploy files say, in one place. Names are Kubernetes DNS labels."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_DNS, description="Service, Deployment and InferenceService name.")
    image: str = Field(pattern=r"^[\w./:@-]+$", description="Image the cluster pulls.")
    models: dict[str, str] = Field(description="Model name -> sha256 of its default version.")
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(2, ge=1, le=64)
    replicas: int = Field(2, ge=1, le=1000)
    max_replicas: int = Field(10, ge=1, le=1000)
    target_cpu: int = Field(70, ge=1, le=100, description="HPA target CPU utilisation, %.")
    cpu_request: str = Field("500m", pattern=_QUANTITY)
    memory_request: str = Field("512Mi", pattern=_QUANTITY)
    cpu_limit: str = Field("2", pattern=_QUANTITY)
    memory_limit: str = Field("1Gi", pattern=_QUANTITY)
    plan: str = Field("starter", pattern=r"^[a-z]+$", description="Render plan.")
    region: str = Field("singapore", pattern=r"^[a-z]+$", description="Render region.")
    canary_percent: int = Field(10, ge=1, le=99)
    storage_uri: str = Field("pvc://modelport-models/models", pattern=r"^[a-z0-9]+://\S+$")
    canary_storage_uri: str = Field(
        "pvc://modelport-models/models-next", pattern=r"^[a-z0-9]+://\S+$"
    )
    extras: list[str] = Field(default_factory=list, description="modelport extras to install.")
    packages: list[str] = Field(
        default_factory=list,
        description="Requirements the models' files name, pinned (``pandas==2.2.3``).",
    )
    uid: int = Field(10001, ge=1, le=2**31 - 1, description="User the container runs as.")
    models_path: str = Field(
        "models",
        pattern=r"^\w[\w.-]*(/\w[\w.-]*)*$",
        description="The model repository's path in the build context.",
    )
    models_target: str = Field(
        "/models", pattern=r"^/models(/[\w.-]+)?$", description="Where it goes in the image."
    )
    outcomes_secret: str | None = Field(
        None,
        pattern=_DNS,
        description="Record outcomes in PostgreSQL: the Secret whose key ``url`` holds a "
        "postgresql:// URL (Kubernetes, KServe); elsewhere the platform's secret env var "
        "MODELPORT_OUTCOMES_URL. Without it recording is off in a cluster, and lost on restart "
        "on the platforms.",
    )
    grpc_port: int | None = Field(
        None, ge=1, le=65535, description="Also serve the Open Inference Protocol over gRPC."
    )
    grpc_probes: bool = Field(
        False, description="Kubernetes startup and readiness probes over grpc.health.v1."
    )

    @model_validator(mode="after")
    def _grpc(self) -> DeploySpec:
        if self.grpc_probes and self.grpc_port is None:
            raise ValueError("grpc_probes needs grpc_port (--grpc-probes needs --grpc-port)")
        if self.grpc_port is not None and self.grpc_port == self.port:
            raise ValueError(f"grpc_port {self.grpc_port} is the HTTP port too")
        return self

    def values(self) -> dict[str, str]:
        data = {k: str(v) for k, v in self.model_dump().items() if not isinstance(v, list | dict)}
        extras = {*self.extras, *(["postgres"] if self.outcomes_secret else [])}
        extras |= {"grpc"} if self.grpc_port else set()
        data["version"] = __version__
        data["model_list"] = ", ".join(self.models) or "no models"
        data["model_hashes"] = ",".join(f"{n}={h[:16]}" for n, h in self.models.items())
        data["extras"] = f"[{','.join(sorted(extras))}]" if extras else ""
        data["packages"] = "".join(f' "{p}"' for p in self.packages)
        data["system_packages"] = _OPENMP if "lightgbm" in self.extras else ""
        data["user"], data["home"] = "modelport", "/home/modelport"
        if self.uid == SPACES_UID:
            data["user"], data["home"] = "user", "/home/user"
        return data | grpc_values(self)


# LightGBM's wheel links the system's OpenMP runtime, which slim Python images lack.
_OPENMP = """\
# hadolint ignore=DL3008
RUN apt-get update \\
    && apt-get install -y --no-install-recommends libgomp1 \\
    && rm -rf /var/lib/apt/lists/*
"""


def _template(name: str) -> str:
    return resources.files("modelport.deploy").joinpath("templates", name).read_text("utf-8")


def render_target(target: str, spec: DeploySpec) -> dict[str, str]:
    """File name -> content for one target (the Docker files included where a platform builds)."""
    names = list(TARGETS[target])
    if target in WITH_DOCKER:
        names = TARGETS["docker"] + names
    if target == "huggingface":
        spec = spec.model_copy(update={"uid": SPACES_UID, "port": SPACES_PORT})
    values = spec.values()
    files = {}
    for out, tpl in names:
        if tpl in VERBATIM:
            files[out] = _template(tpl)
            continue
        if tpl in GRPC_ONLY and spec.grpc_port is None:
            continue
        if tpl in _OUTCOMES:
            values |= outcome_values(spec, tpl)
        files[out] = string.Template(_template(tpl)).substitute(values)
    return files


def default_name(text: str) -> str:
    """A DNS label made from ``text``."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "modelport"
