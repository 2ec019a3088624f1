"""Every command modelport prints for a person to run next, built here and nowhere else.

An error or a message that suggests a command gets it from a function of this module, so the
command is quoted once, the same way, and tests/test_hints.py runs each one as printed (a test
walks the package for command strings built anywhere else). :data:`CATALOG` names them all,
with where they are printed; the generated deploy files' own comments (``kubectl apply -f``,
``docker compose up``, ``docker build``) are checked against the files beside them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

__all__ = [
    "CATALOG",
    "docker_build",
    "docker_run",
    "pin",
    "pip_extra",
    "pip_package",
    "pip_source",
    "rerun_with_trust",
    "serve_trusted",
    "trust",
]

#: every hint, by the function that builds it: where modelport prints it
CATALOG: dict[str, str] = {
    "pip_extra": "a runtime, example or feature whose extra is not installed",
    "pip_package": "decoding an image without Pillow",
    "pip_source": "`modelport build` from an installation without its source",
    "pin": "a model file or folder no trusted pin vouches for (and a build context's lock)",
    "trust": "the same refusal: load it unpinned (rewritten by the CLI into the command run)",
    "rerun_with_trust": "the CLI: `trust`'s advice as the very command that was run, with it",
    "serve_trusted": "an MLflow registry model with only the python_function flavor",
    "docker_build": "`modelport build` where there is no docker",
    "docker_run": "`modelport build`, once the image is built",
}


def _q(value: str | Path) -> str:
    return shlex.quote(str(value))


def pip_extra(extra: str) -> str:
    """Install modelport's ``extra`` (a name pyproject.toml defines)."""
    return f"pip install 'modelport[{extra}]'"


def pip_package(package: str) -> str:
    """Install one package that no extra is needed for."""
    return f"pip install {_q(package)}"


def pip_source() -> str:
    """Install modelport from its source checkout (run in the checkout)."""
    return "pip install -e ."


def pin(root: str | Path, lock: Path | None = None) -> str:
    """Pin the model files under ``root`` (a repository, a folder or one file) in ``lock``
    (default: the lock beside the repository)."""
    return f"modelport pin {_q(root)}" + (f" --lock {_q(lock)}" if lock is not None else "")


def trust(path: str | Path) -> str:
    """Advice to load ``path`` as it is; the CLI turns it into the command run, with it."""
    return f"add --trust {_q(path)} to the command"


_TRUST = re.compile(r"add --trust (.+?) to the command")  # a path quoted with ' in it too


def rerun_with_trust(message: str, argv: list[str]) -> str:
    """``message`` with every :func:`trust` advice replaced by the command that was run
    (``modelport`` and ``argv``) with ``--trust PATH`` added."""
    command = shlex.join(["modelport", *argv])
    return _TRUST.sub(lambda m: f"run {command} --trust {m.group(1)}", message)


def serve_trusted(served: str, name: str) -> str:
    """Serve ``served`` trusting the MLflow registry model ``name``'s own code."""
    return f"modelport serve {_q(served)} --trust {_q(f'models:/{name}')}"


def docker_build(image: str, context: Path) -> list[str]:
    """Build ``image`` from the build context folder ``context``."""
    return ["docker", "build", "-t", image, str(context)]


def docker_run(image: str, *ports: int) -> list[str]:
    """Run ``image``, each of its ports (HTTP, then gRPC when on) published on the same port
    here."""
    publish = [word for port in ports for word in ("-p", f"{port}:{port}")]
    return ["docker", "run", "--rm", *publish, image]
