"""The parts of the deploy files that two switches change: gRPC beside HTTP (``grpc_port``,
``grpc_probes``), and where outcomes (A/B feedback) go (``outcomes_secret``).

Each function returns template values. With a switch off, the values leave the file exactly as it
was before the switch existed (the golden files check that), except the notes that say plainly
that outcomes are lost on restart and how to keep them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelport.deploy import DeploySpec

__all__ = ["grpc_values", "outcome_values"]

_HTTP_PROBE = "            httpGet:\n              path: {path}\n              port: http"
_GRPC_PROBE = "            grpc:\n              port: {port}"


def grpc_values(spec: DeploySpec) -> dict[str, str]:
    """Values for the ``$grpc_*`` and ``$*_probe`` placeholders."""
    port = spec.grpc_port
    probe_http = _HTTP_PROBE.format(path="/v2/health/ready")
    values = {
        "grpc_env": "",
        "grpc_expose": "",
        "grpc_publish": "",
        "grpc_compose": "",
        "grpc_k8s_port": "",
        "grpc_k8s_env": "",
        "grpc_k8s_service": "",
        "grpc_kserve_protocol": "",
        "grpc_kserve_args": "",
        "startup_probe": _HTTP_PROBE.format(path="/v2/health/live"),
        "readiness_probe": probe_http,
    }
    if port is None:
        return values
    values |= {
        "grpc_port": str(port),
        "grpc_env": f" \\\n    MODELPORT_GRPC_PORT={port}",
        "grpc_expose": f" {port}",
        "grpc_publish": f" -p {port}:{port}",
        "grpc_compose": f'\n      - "{port}:{port}"',
        "grpc_k8s_port": f"\n            - name: grpc\n              containerPort: {port}",
        "grpc_k8s_env": f'\n            - name: MODELPORT_GRPC_PORT\n              value: "{port}"',
        "grpc_k8s_service": (
            f"\n    - name: grpc\n      port: {port}\n      targetPort: grpc\n"
            "      appProtocol: kubernetes.io/h2c"
        ),
        "grpc_kserve_protocol": "\n    - grpc-v2",
        "grpc_kserve_args": f', "--grpc-port", "{port}"',
    }
    if spec.grpc_probes:  # grpc.health.v1 says SERVING only once the models are ready
        values["startup_probe"] = values["readiness_probe"] = _GRPC_PROBE.format(port=port)
    return values


_OFF_DOCKER = """\
# State: outcomes (A/B feedback) go to /models/.modelport in the container and are lost when it
# is removed or redeployed. Keep them with a volume there, or in PostgreSQL: regenerate with
# --outcomes-secret NAME (installs the driver), then set MODELPORT_OUTCOMES_URL to its URL."""
_ON_DOCKER = """\
# State: outcomes (A/B feedback) go to PostgreSQL: set MODELPORT_OUTCOMES_URL (a secret of the
# platform) to a postgresql:// URL; the driver is installed. Unset, they go to /models/.modelport
# and are lost when the container is removed or redeployed."""
_OFF_RENDER = """\
# Outcomes (A/B feedback) live in the container and are lost at each deploy or restart: set
# MODELPORT_OUTCOMES_URL to a PostgreSQL URL (a Render database) to keep them."""
_ON_RENDER = """\
# Outcomes (A/B feedback) go to PostgreSQL: Render asks for MODELPORT_OUTCOMES_URL (a Render
# database's internal URL) when the Blueprint is created; without it they are lost at each
# deploy or restart."""
_OFF_SPACES = """\
A Space's disk is reset when it restarts: outcomes (A/B feedback) recorded in
`/models/.modelport` are lost then. To keep them, add a secret `MODELPORT_OUTCOMES_URL` with a
PostgreSQL URL in the Space's settings."""
_ON_SPACES = """\
Outcomes (A/B feedback) go to PostgreSQL: add a secret `MODELPORT_OUTCOMES_URL` with a
PostgreSQL URL in the Space's settings (the image has the driver). Without it they are recorded in
`/models/.modelport`, which is lost when the Space restarts."""
_OFF_COMPOSE = """\
# Outcomes (A/B feedback) and Prometheus' data are kept in named volumes across restarts and
# rebuilds; `docker compose down -v` deletes them. To keep outcomes in PostgreSQL instead,
# regenerate with --outcomes-secret NAME and set MODELPORT_OUTCOMES_URL (in .env)."""
_ON_COMPOSE = """\
# Outcomes (A/B feedback) go to PostgreSQL at MODELPORT_OUTCOMES_URL (from .env or the shell).
# Prometheus' data is kept in a named volume; `docker compose down -v` deletes it."""


def _cluster(spec: DeploySpec, indent: int) -> tuple[str, str]:
    pad = " " * indent
    if spec.outcomes_secret:
        note = (
            f"# Outcomes (A/B feedback) go to PostgreSQL: the URL is the key `url` of the "
            f"Secret {spec.outcomes_secret}."
        )
        env = (
            f"{pad}- name: MODELPORT_OUTCOMES_URL\n{pad}  valueFrom:\n"
            f"{pad}    secretKeyRef:\n{pad}      name: {spec.outcomes_secret}\n"
            f"{pad}      key: url"
        )
        return note, env
    note = (
        "# Outcome recording is OFF: the model folder is read-only and each replica would\n"
        "# keep its own outcomes, lost on restart. Regenerate with --outcomes-secret NAME (a\n"
        "# Secret whose key `url` holds a postgresql:// URL) to record them in PostgreSQL."
    )
    return note, f'{pad}- name: MODELPORT_OUTCOMES\n{pad}  value: "false"'


def outcome_values(spec: DeploySpec, template: str) -> dict[str, str]:
    """``$outcomes_note`` and ``$outcomes_env`` of one template."""
    on = spec.outcomes_secret is not None
    if template == "kubernetes.yaml":
        note, env = _cluster(spec, 12)
    elif template == "kserve-servingruntime.yaml":
        note, env = _cluster(spec, 8)
    elif template == "render.yaml":
        note = _ON_RENDER if on else _OFF_RENDER
        env = "\n      - key: MODELPORT_OUTCOMES_URL\n        sync: false" if on else ""
    elif template == "compose.yaml":
        note = _ON_COMPOSE if on else _OFF_COMPOSE
        url = "${MODELPORT_OUTCOMES_URL:?set it to a postgresql:// URL}"
        env = f"\n      MODELPORT_OUTCOMES_URL: {url}" if on else ""
    elif template == "huggingface-README.md":
        note, env = (_ON_SPACES if on else _OFF_SPACES), ""
    else:
        note, env = (_ON_DOCKER if on else _OFF_DOCKER), ""
    return {"outcomes_note": note, "outcomes_env": env}
