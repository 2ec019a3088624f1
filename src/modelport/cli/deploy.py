"""``modelport build`` and ``modelport deploy``: the library side of the two commands."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections import deque
from pathlib import Path
from typing import Any

from rich.console import Console

from modelport.deploy.context import needs_notes, spec_for, write_target
from modelport.errors import ConfigError
from modelport.hints import docker_build, docker_run

__all__ = ["build_image", "deploy_files"]

# `modelport validate` prints one such line per model that failed the image's check
_FAILED = re.compile(r"^(?:Step \d+/\d+ : )?.*\bv\d+ failed: .*$")


def deploy_files(
    target: str, repo: Path, out: Path | None, err: Console, *, force: bool, **options: Any
) -> list[Path]:
    """Write ``target``'s files for ``repo`` into ``out`` (default ``deploy/<target>``)."""
    spec = spec_for(repo, **options)
    for note in needs_notes(repo):
        err.print(f"[yellow]warning:[/] {note}", highlight=False)
    written = write_target(target, repo, out or Path("deploy") / target, spec, force=force)
    for path in written:
        err.print(f"wrote {path}", highlight=False)
    return written


def _docker_build(image: str, context: Path, err: Console) -> None:
    """``docker build``, its output streamed; the failed models' reasons repeated at the end."""
    # the hint's command; on the host's network, as RUN steps may need no bridge network
    docker, build, *rest = docker_build(image, context)
    command = [docker, build, "--network", "host", *rest]
    reasons: list[str] = []
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        for line in proc.stdout or ():
            print(line, end="", flush=True)
            tail.append(line.rstrip())
            if _FAILED.match(line.strip()):
                reasons.append(line.strip())
    if proc.returncode == 0:
        return
    if reasons:
        raise ConfigError(
            "the image was not built: a model cannot load or answer its example inside it: "
            + "; ".join(reasons)
        )
    raise ConfigError(f"docker build failed ({proc.returncode}): " + " | ".join(list(tail)[-5:]))


def build_image(
    repo: Path,
    tag: str,
    out: Path | None,
    err: Console,
    *,
    force: bool = False,
    grpc_port: int | None = None,
) -> str | None:
    """Write the build context of ``repo`` and build it; the image, or None without Docker."""
    name = tag.split(":")[0].rsplit("/", 1)[-1] or None
    spec = spec_for(repo, image=tag or None, name=name, grpc_port=grpc_port)
    for note in needs_notes(repo):
        err.print(f"[yellow]warning:[/] {note}", highlight=False)
    context = out or Path("build") / spec.name
    write_target("docker", repo, context, spec, force=force)
    err.print(f"Wrote the build context {context} (models: {', '.join(spec.models)})")
    if shutil.which("docker") is None:
        hint = shlex.join(docker_build(spec.image, context))
        err.print(f"No docker here: build it with  {hint}", highlight=False, soft_wrap=True)
        return None
    _docker_build(spec.image, context, err)
    ports = [p for p in (spec.port, spec.grpc_port) if p]
    hint = shlex.join(docker_run(spec.image, *ports))
    err.print(f"Built {spec.image}: {hint}", highlight=False, soft_wrap=True)
    return spec.image
