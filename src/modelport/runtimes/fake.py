"""A fake runtime for tests and demos: no framework, behaviour set in the card's ``parameters``:

- ``n_features`` (default 2), ``classes`` (default ``[0, 1]``; empty for a regressor);
- ``delay_s``: seconds each predict takes; ``load_delay_s``: seconds loading takes;
- ``load_error``: loading fails with this message;
- ``predict_error``: predict raises ValueError with this message;
- ``load_gate``: a file path; loading waits until it exists (a test can see the loading state);
- ``predict_flag``: a file path touched when a predict starts (a test knows one is in flight).

The artifact may hold a YAML mapping of these parameters, overriding the card's for that one
version (a version that fails its warm-up while the others serve, say).

A classifier answers class ``int(sum(row)) % len(classes)`` with probability 0.9; a regressor
answers ``sum(row)``. The artifact is any file ending in ``.fake``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelport.errors import ModelLoadError
from modelport.model.signature import ModelFacts
from modelport.runtimes import LoadContext, Outputs, Runtime

__all__ = ["FakeRuntime"]


def _own_parameters(artifact: Path) -> dict[str, Any]:
    try:
        found = yaml.safe_load(artifact.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return found if isinstance(found, dict) else {}


def _wait_for(gate: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not gate.exists():
        if time.monotonic() > deadline:
            raise ModelLoadError(f"load gate {gate} never opened")
        time.sleep(0.01)


class FakeRuntime(Runtime):
    name = "fake"
    suffixes = (".fake",)

    def __init__(self) -> None:
        self.classes: list[int | str] = []
        self.delay_s = 0.0
        self.predict_error: str | None = None
        self.predict_flag: Path | None = None

    def load(self, context: LoadContext) -> ModelFacts:
        params = {**context.card.parameters, **_own_parameters(context.artifact)}
        if params.get("load_gate"):
            _wait_for(Path(params["load_gate"]))
        time.sleep(float(params.get("load_delay_s", 0.0)))
        if params.get("load_error"):
            raise ModelLoadError(str(params["load_error"]))
        self.classes = list(params.get("classes", [0, 1]))
        self.delay_s = float(params.get("delay_s", 0.0))
        self.predict_error = params.get("predict_error")
        flag = params.get("predict_flag")
        self.predict_flag = Path(flag) if flag else None
        return ModelFacts(
            n_features=int(params.get("n_features", 2)),
            kind="classification" if self.classes else "regression",
            classes=self.classes or None,
            has_probabilities=bool(self.classes),
        )

    def predict(self, rows: np.ndarray) -> Outputs:
        if self.predict_flag is not None:
            self.predict_flag.touch()
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.predict_error:
            raise ValueError(self.predict_error)
        sums = rows.astype(np.float64).sum(axis=1)
        if not self.classes:
            return Outputs(predictions=sums)
        k = len(self.classes)
        index = sums.astype(np.int64) % k
        proba = np.full((len(rows), k), 0.1 / max(k - 1, 1))
        proba[np.arange(len(rows)), index] = 0.9 if k > 1 else 1.0
        return Outputs(
            predictions=np.asarray(self.classes, dtype=object)[index], probabilities=proba
        )
