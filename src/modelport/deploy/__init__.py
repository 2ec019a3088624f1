"""Deploy files for a model repository, rendered from one typed spec and the templates shipped
in ``modelport/deploy/templates``: a Docker build context, Render, Railway, Hugging Face Spaces,
Kubernetes and KServe.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelport._version import __version__

__all__ = ["TARGETS", "DeploySpec", "Target", "render_target"]

Target = Literal["docker", "render", "railway", "huggingface", "kubernetes", "kserve"]

# target -> (output file name, template name)
TARGETS: dict[str, list[tuple[str, str]]] = {
    "docker": [("Dockerfile", "Dockerfile"), (".dockerignore", "dockerignore")],
    "render": [("render.yaml", "render.yaml")],
    "railway": [("railway.json", "railway.json")],
    "huggingface": [("README.md", "huggingface-README.md")],
    "kubernetes": [("kubernetes.yaml", "kubernetes.yaml")],
    "kserve": [
        ("servingruntime.yaml", "kserve-servingruntime.yaml"),
        ("inferenceservice.yaml", "kserve-inferenceservice.yaml"),
        ("inferenceservice-canary.yaml", "kserve-inferenceservice-canary.yaml"),
    ],
}
# Platforms that build the repository's Dockerfile get the Docker files too.
WITH_DOCKER = {"render", "railway", "huggingface"}

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

    def values(self) -> dict[str, str]:
        data = {k: str(v) for k, v in self.model_dump().items() if not isinstance(v, list | dict)}
        data["version"] = __version__
        data["model_list"] = ", ".join(self.models) or "no models"
        data["model_hashes"] = ",".join(f"{n}={h[:16]}" for n, h in self.models.items())
        data["extras"] = f"[{','.join(self.extras)}]" if self.extras else ""
        data["system_packages"] = _OPENMP if "lightgbm" in self.extras else ""
        return data


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
    """File name -> content for one target (Render, Railway and Spaces include the Dockerfile)."""
    names = list(TARGETS[target])
    if target in WITH_DOCKER:
        names = TARGETS["docker"] + names
    values = spec.values()
    if target == "huggingface":
        values["port"] = "7860"
    return {out: string.Template(_template(tpl)).substitute(values) for out, tpl in names}


def default_name(text: str) -> str:
    """A DNS label made from ``text``."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "modelport"
