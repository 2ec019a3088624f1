"""Every ``pip install 'modelport[EXTRA]'`` hint modelport prints names an extra that exists, so
the command works as printed (tests/test_extras.py installs the example extras for real)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
HINT = re.compile(r"pip install '?modelport\[([A-Za-z0-9_,-]+)\]'?")


def test_every_extra_a_hint_names_exists() -> None:
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    named: dict[str, set[str]] = {}
    for path in (ROOT / "src" / "modelport").rglob("*.py"):
        for match in HINT.finditer(path.read_text(encoding="utf-8")):
            for extra in match.group(1).split(","):
                named.setdefault(extra, set()).add(str(path.relative_to(ROOT)))
    assert len(named) >= 8  # the runtimes', the examples', gRPC's, tracing's, ...
    missing = {extra: sorted(where) for extra, where in named.items() if extra not in extras}
    assert not missing, f"hints name extras pyproject.toml does not define: {missing}"


def test_every_extra_the_runtimes_hint_exists() -> None:
    """The hints built from ``runtimes.EXTRAS`` (a runtime or package not installed)."""
    from modelport.runtimes import EXTRAS

    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    assert set(EXTRAS.values()) <= extras
