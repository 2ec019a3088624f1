"""``modelport build`` and ``modelport deploy``: the library side of the two commands."""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import subprocess
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from modelport.deploy import DeploySpec
from modelport.deploy.context import needs_notes, spec_for, write_target
from modelport.deploy.files import check_out
from modelport.deploy.frozen import Frozen, check_place, frozen
from modelport.errors import ConfigError
from modelport.hints import docker_build, docker_run

__all__ = ["build_image", "deploy_files"]

# `modelport validate` prints one such line per model that failed the image's check
_FAILED = re.compile(r"^(?:Step \d+/\d+ : )?.*\bv\d+ failed: .*$")


def _context(
    target: str, found: Frozen, out: Path, err: Console, *, force: bool, spec: DeploySpec
) -> list[Path]:
    """Write ``target``'s files for the (frozen) repository, saying what was frozen."""
    for note in needs_notes(found.repo):
        err.print(f"[yellow]warning:[/] {note}", highlight=False)
    written = write_target(target, found.repo, out, spec, force=force, lock=found.lock)
    for note in found.notes():
        err.print(f"{note[0].upper()}{note[1:]}", highlight=False, soft_wrap=True)
    return written


@contextlib.contextmanager
def _frozen(repo: Path, out: Path, trusted: list[Path]) -> Iterator[Frozen]:
    """``repo`` with its registry sources frozen (see :mod:`modelport.deploy.frozen`)."""
    check_out(out, repo)
    with frozen(repo, trusted) as found:
        check_place(repo, out, found)
        yield found


def deploy_files(
    target: str,
    repo: Path,
    out: Path | None,
    err: Console,
    *,
    force: bool,
    trusted: list[Path] | None = None,
    **options: Any,
) -> list[Path]:
    """Write ``target``'s files for ``repo`` into ``out`` (default ``deploy/<target>``); each
    registry source is frozen at the version it names now."""
    out = out or Path("deploy") / target
    with _frozen(repo, out, trusted or []) as found:
        spec = spec_for(found.repo, origin=repo, **options)
        written = _context(target, found, out, err, force=force, spec=spec)
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
    trusted: list[Path] | None = None,
) -> str | None:
    """Write the build context of ``repo`` (each registry source frozen at the version it names
    now) and build it; the image, or None without Docker."""
    name = tag.split(":")[0].rsplit("/", 1)[-1] or None
    with frozen(repo, trusted) as found:
        spec = spec_for(found.repo, image=tag or None, name=name, grpc_port=grpc_port, origin=repo)
        context = out or Path("build") / spec.name
        check_out(context, repo)
        check_place(repo, context, found)
        _context("docker", found, context, err, force=force, spec=spec)
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
