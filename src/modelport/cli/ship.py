"""``modelport build`` and ``modelport deploy``: the Docker build context and the platforms'
files for a model repository."""

# typer reads the annotations at run time and needs Optional[...] on Python 3.10:
# ruff: noqa: UP045

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelport.cli.options import PathArg, err, settings

__all__ = ["build", "deploy"]


def build(
    path: PathArg = None,
    tag: Annotated[str, typer.Option("--tag", "-t", help="Image name[:tag].")] = "",
    out: Annotated[
        Optional[Path], typer.Option(help="Build context folder (default: build/<name>).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the Dockerfile; build nothing.")] = False,
) -> None:
    """Write a Docker build context for a model repository and build it with Docker."""
    from modelport.deploy import render_target
    from modelport.deploy.context import spec_for, write_target

    repo = settings(models=path).models
    spec = spec_for(repo, image=tag or None, name=tag.split(":")[0].rsplit("/", 1)[-1] or None)
    if dry_run:
        print(render_target("docker", spec)["Dockerfile"], end="")
        return
    context = out or Path("build") / spec.name
    write_target("docker", repo, context, spec)
    err.print(f"Wrote the build context {context} (models: {', '.join(spec.models)})")
    if shutil.which("docker") is None:
        err.print(f"No docker here: build it with  docker build -t {spec.image} {context}")
        return
    done = subprocess.run(["docker", "build", "--network", "host", "-t", spec.image, str(context)])
    if done.returncode != 0:
        raise typer.Exit(done.returncode)
    err.print(f"Built {spec.image}: docker run --rm -p {spec.port}:{spec.port} {spec.image}")


def deploy(
    target: Annotated[
        str, typer.Argument(help="render, railway, huggingface, kubernetes, kserve or docker")
    ],
    path: PathArg = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Folder for the files (default: deploy/<target>).")
    ] = None,
    name: Annotated[Optional[str], typer.Option(help="Service name (a DNS label).")] = None,
    image: Annotated[Optional[str], typer.Option(help="Image the cluster pulls.")] = None,
    replicas: Annotated[int, typer.Option(help="Replicas (the autoscaler's minimum).")] = 2,
    workers: Annotated[int, typer.Option(help="Worker processes per container.")] = 2,
) -> None:
    """Write the files that deploy a model repository to a platform."""
    from modelport.deploy import TARGETS
    from modelport.deploy.context import spec_for, write_target

    if target not in TARGETS:
        raise typer.BadParameter(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    repo = settings(models=path).models
    spec = spec_for(repo, name=name, image=image, replicas=replicas, workers=workers)
    folder = out or Path("deploy") / target
    for written in write_target(target, repo, folder, spec):
        err.print(f"wrote {written}")
