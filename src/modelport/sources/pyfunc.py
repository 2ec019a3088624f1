"""The ``mlflow_pyfunc`` runtime: an MLflow model with only the ``python_function`` flavor,
loaded by MLflow itself. Its loader runs the model's own Python code, so it loads only when the
user trusts it (``--trust models:/NAME``); every other flavor loads through modelport's own
runtimes instead. Rows reach the model as a DataFrame with the signature's column names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.errors import UntrustedArtifact
from modelport.model.signature import ModelFacts
from modelport.runtimes import LoadContext, Outputs, Runtime

__all__ = ["PyfuncRuntime"]


class PyfuncRuntime(Runtime):
    name = "mlflow_pyfunc"
    batchable = True

    def __init__(self) -> None:
        self.model: Any = None
        self.columns: list[str] = []

    def load(self, context: LoadContext) -> ModelFacts:
        folder = context.artifact.parent if context.artifact.is_file() else context.artifact
        if not context.trusted:
            raise UntrustedArtifact(
                f"refusing to load {folder}: an MLflow python_function model runs its own Python "
                f"code when loaded; serve it with --trust {context.card.source or folder}"
            )
        from modelport.sources.mlflow_client import load_pyfunc

        self.model = load_pyfunc(folder)
        inputs = context.card.signature.inputs if context.card.signature else None
        self.columns = [f.name for f in inputs or []]
        # what it answers (labels or values) is the signature's to say: MLflow's loader hides it
        return ModelFacts(n_features=len(self.columns) or None)

    def predict(self, rows: np.ndarray) -> Outputs:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=self.columns or None).infer_objects()
        answer = self.model.predict(frame)
        values = answer.to_numpy() if hasattr(answer, "to_numpy") else np.asarray(answer)
        return Outputs(predictions=values.reshape(len(rows), -1)[:, 0])

    def unload(self) -> None:
        self.model = None
