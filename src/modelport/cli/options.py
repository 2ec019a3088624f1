"""What the ``modelport`` commands share: the consoles, the path and ``--trust`` arguments, and
the settings built from flags."""

# typer reads the annotations at run time and needs Optional[...] on Python 3.10:
# ruff: noqa: UP045

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

__all__ = ["ModelsOpt", "PathArg", "RepoOpt", "TrustOpt", "err", "out", "settings"]

err = Console(stderr=True)
out = Console()

PathArg = Annotated[
    Optional[Path],
    typer.Argument(help="Model repository, one model's folder, or a model file. Default: ./models"),
]
# the repository option: --repo or --models, whichever a command's examples use
RepoOpt = Annotated[Path, typer.Option("--repo", "--models", help="Model repository.")]
ModelsOpt = Annotated[
    Optional[Path],
    typer.Option("--models", "--repo", help="Model repository (default ./models)."),
]
TrustOpt = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--trust",
        help="Load this file (or every file under this folder) as it is, even when no "
        "trusted pin vouches for it (modelport pin). Repeatable.",
    ),
]


def settings(**overrides: Any) -> Any:
    from modelport.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None and v != []})
