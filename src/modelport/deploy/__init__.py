"""Deploy files for a model repository, rendered from one typed spec and the templates shipped
in ``modelport/deploy/templates``: a Docker build context, Render, Railway, Hugging Face Spaces,
Kubernetes, KServe, and a compose stack with Prometheus and Grafana.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelport._version import __version__

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
        description="Secret whose key ``url`` holds a postgresql:// URL for outcome recording "
        "(Kubernetes, KServe); without it recording is off there.",
    )

    def values(self) -> dict[str, str]:
        data = {k: str(v) for k, v in self.model_dump().items() if not isinstance(v, list | dict)}
        extras = sorted({*self.extras, *(["postgres"] if self.outcomes_secret else [])})
        data["version"] = __version__
        data["model_list"] = ", ".join(self.models) or "no models"
        data["model_hashes"] = ",".join(f"{n}={h[:16]}" for n, h in self.models.items())
        data["extras"] = f"[{','.join(extras)}]" if extras else ""
        data["packages"] = "".join(f' "{p}"' for p in self.packages)
        data["system_packages"] = _OPENMP if "lightgbm" in self.extras else ""
        data["user"], data["home"] = "modelport", "/home/modelport"
        if self.uid == SPACES_UID:
            data["user"], data["home"] = "user", "/home/user"
        return data

    def outcomes(self, indent: int) -> tuple[str, str]:
        """The note and the env entries that wire outcome recording in a cluster."""
        pad = " " * indent
        if self.outcomes_secret:
            note = (
                f"# Outcomes (A/B feedback) go to PostgreSQL: the URL is the key `url` of the "
                f"Secret {self.outcomes_secret}."
            )
            env = (
                f"{pad}- name: MODELPORT_OUTCOMES_URL\n{pad}  valueFrom:\n"
                f"{pad}    secretKeyRef:\n{pad}      name: {self.outcomes_secret}\n"
                f"{pad}      key: url"
            )
            return note, env
        note = (
            "# Outcome recording is OFF: the model folder is read-only and each replica would\n"
            "# keep its own outcomes, lost on restart. Regenerate with --outcomes-secret NAME (a\n"
            "# Secret whose key `url` holds a postgresql:// URL) to record them in PostgreSQL."
        )
        return note, f'{pad}- name: MODELPORT_OUTCOMES\n{pad}  value: "false"'


# LightGBM's wheel links the system's OpenMP runtime, which slim Python images lack.
_OPENMP = """\
# hadolint ignore=DL3008
RUN apt-get update \\
    && apt-get install -y --no-install-recommends libgomp1 \\
    && rm -rf /var/lib/apt/lists/*
"""
_OUTCOME_INDENT = {"kubernetes.yaml": 12, "kserve-servingruntime.yaml": 8}


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
        if tpl in _OUTCOME_INDENT:
            values["outcomes_note"], values["outcomes_env"] = spec.outcomes(_OUTCOME_INDENT[tpl])
        files[out] = string.Template(_template(tpl)).substitute(values)
    return files


def default_name(text: str) -> str:
    """A DNS label made from ``text``."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "modelport"
