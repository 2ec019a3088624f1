"""``modelport build`` and ``modelport deploy``: the Docker build context and the platforms'
files for a model repository."""

# typer reads the annotations at run time and needs Optional[...] on Python 3.10:
# ruff: noqa: UP045

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelport.cli.options import PathArg, err, settings

__all__ = ["build", "deploy"]


ForceOpt = Annotated[bool, typer.Option(help="Replace the files in --out it names as not ours.")]
RegistryTrustOpt = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--trust",
        help="models:/NAME: freeze that registry model into the image even when it loads only "
        "by running code it carries (a pickle, python_function). Repeatable.",
    ),
]
GrpcPortOpt = Annotated[
    Optional[int],
    typer.Option(
        help="Also serve the Open Inference Protocol over gRPC on this port (the image gets "
        "modelport[grpc] and MODELPORT_GRPC_PORT; the manifests expose it).",
        min=1,
        max=65535,
    ),
]


def build(
    path: PathArg = None,
    tag: Annotated[str, typer.Option("--tag", "-t", help="Image name[:tag].")] = "",
    out: Annotated[
        Optional[Path], typer.Option(help="Build context folder (default: build/<name>).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the Dockerfile; build nothing.")] = False,
    grpc_port: GrpcPortOpt = None,
    force: ForceOpt = False,
    trust: RegistryTrustOpt = None,
) -> None:
    """Write a Docker build context for a model repository and build it with Docker; the build
    fails, with the reason, when a model cannot load or predict its example in the image."""
    from modelport.cli.deploy import build_image
    from modelport.deploy import render_target
    from modelport.deploy.context import spec_for
    from modelport.deploy.frozen import frozen
    from modelport.sources.registry import trusted_paths

    repo = settings(models=path).models
    trusted = trusted_paths(trust or [])
    if dry_run:
        name = tag.split(":")[0].rsplit("/", 1)[-1] or None
        with frozen(repo, trusted) as found:
            spec = spec_for(found.repo, name, tag or None, origin=repo, grpc_port=grpc_port)
        print(render_target("docker", spec)["Dockerfile"])
        return
    build_image(repo, tag, out, err, force=force, grpc_port=grpc_port, trusted=trusted)


def deploy(
    target: Annotated[str, typer.Argument(help="render, railway, huggingface, kubernetes, ...")],
    path: PathArg = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Folder for the files (default: deploy/<target>).")
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option(help="Service name (default: the single model's, else the folder's)."),
    ] = None,
    image: Annotated[Optional[str], typer.Option(help="Image the cluster pulls.")] = None,
    replicas: Annotated[int, typer.Option(help="Replicas (the autoscaler's minimum).")] = 2,
    workers: Annotated[int, typer.Option(help="Worker processes per container.")] = 2,
    outcomes_secret: Annotated[
        Optional[str],
        typer.Option(
            help="Record outcomes in PostgreSQL: the Secret whose key `url` is a postgresql:// "
            "URL (Kubernetes, KServe); elsewhere the platform's MODELPORT_OUTCOMES_URL."
        ),
    ] = None,
    grpc_port: GrpcPortOpt = None,
    grpc_probes: Annotated[
        bool,
        typer.Option(help="Kubernetes startup and readiness probes over grpc.health.v1."),
    ] = False,
    force: ForceOpt = False,
    trust: RegistryTrustOpt = None,
) -> None:
    """Write the files that deploy a model repository to a platform; never replaces a file
    modelport did not write unless --force."""
    from modelport.cli.deploy import deploy_files
    from modelport.deploy import TARGETS
    from modelport.sources.registry import trusted_paths

    if target not in TARGETS:
        raise typer.BadParameter(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    repo = settings(models=path).models
    options = {"replicas": replicas, "workers": workers, "outcomes_secret": outcomes_secret}
    options |= {"grpc_port": grpc_port, "grpc_probes": grpc_probes}
    trusted = trusted_paths(trust or [])
    deploy_files(
        target, repo, out, err, force=force, trusted=trusted, name=name, image=image, **options
    )
