"""The ``modelport`` command: typer parsing in :mod:`.main`, and the library functions each
subcommand calls (import, validate, predict, convert, examples), which tests call directly."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """The console script: parse ``sys.argv`` and run the subcommand."""
    from modelport.cli.main import main as run

    run()
