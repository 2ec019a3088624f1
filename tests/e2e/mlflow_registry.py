"""A real MLflow tracking server (sqlite backend, local artifacts) on loopback, and models
registered in it through the MLflow client, for the registry tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np

from tests.helpers import free_port

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@contextlib.contextmanager
def mlflow_server(
    folder: Path, command: str, timeout_s: float = 400
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``command`` (an ``mlflow server`` command line whose ``--port 5000`` becomes a free
    port) in ``folder`` until it answers; stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "mlflow.log").open("wb")
    bin_dir = Path(sys.executable).parent
    process = subprocess.Popen(
        ["bash", "-c", command.replace("--port 5000", f"--port {port}")],
        cwd=folder,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert process.poll() is None, (folder / "mlflow.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "mlflow server not up"
            time.sleep(0.2)
        yield url, process
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _iris() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return pd.DataFrame(x, columns=COLUMNS), y


class Registrar:
    """Registers models through the MLflow client (warnings from MLflow itself silenced)."""

    def __init__(self, url: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow

        mlflow.set_tracking_uri(url)
        self.mlflow = mlflow
        self.client = mlflow.MlflowClient(url)
        self.x, self.y = _iris()

    def _log(self, flavor: str, model: Any, name: str, **options: Any) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = getattr(self.mlflow, flavor)
            if flavor == "pyfunc":
                options["python_model"] = model
            else:
                keyword = {
                    "sklearn": "sk_model",
                    "xgboost": "xgb_model",
                    "onnx": "onnx_model",
                    "lightgbm": "lgb_model",
                    "pytorch": "pytorch_model",
                    "transformers": "transformers_model",
                }
                options[keyword[flavor]] = model
            with self.mlflow.start_run():
                info = module.log_model(
                    name="model", registered_model_name=name, pip_requirements=[], **options
                )
        return int(info.registered_model_version)

    def sklearn(self, name: str, model: Any, columns: int = 4) -> int:
        from mlflow.models import infer_signature

        x = self.x.iloc[:, :columns]
        signature = infer_signature(x, self.y)
        return self._log("sklearn", model, name, signature=signature, input_example=x.head(2))

    def xgboost(self, name: str) -> int:
        import xgboost
        from mlflow.models import infer_signature

        model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(self.x, self.y)
        return self._log("xgboost", model, name, signature=infer_signature(self.x, self.y))

    def onnx(self, name: str) -> int:
        from mlflow.models import infer_signature
        from skl2onnx import to_onnx
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=500).fit(self.x.to_numpy(), self.y)
        proto = to_onnx(model, self.x.to_numpy()[:1].astype(np.float32), options={"zipmap": False})
        signature = infer_signature(self.x, self.y)
        return self._log("onnx", proto, name, signature=signature, input_example=self.x.head(1))

    def pyfunc(self, name: str) -> int:
        """A ``python_function``-only model: its own code answers ``text`` with ``text``."""
        import pandas as pd
        from mlflow.models import infer_signature
        from mlflow.pyfunc import PythonModel

        with warnings.catch_warnings():  # MLflow's advice on type hints
            warnings.simplefilter("ignore")

            class Echo(PythonModel):  # type: ignore[misc]
                def predict(self, model_input: pd.DataFrame, params: Any = None) -> list[str]:
                    return [str(text) for text in model_input["text"]]

            model = Echo()  # MLflow checks the hints here too

        signature = infer_signature(pd.DataFrame({"text": ["hello"]}), ["hello"])
        return self._log("pyfunc", model, name, signature=signature)

    def lightgbm(self, name: str, booster: bool) -> int:
        """An ``LGBMClassifier`` (MLflow saves it with skops), or its ``Booster`` (text)."""
        import lightgbm
        from mlflow.models import infer_signature

        model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(self.x, self.y)
        signature = infer_signature(self.x, self.y)
        return self._log(
            "lightgbm", model.booster_ if booster else model, name, signature=signature
        )

    def pytorch(self, name: str, pickled: bool = False) -> int:
        """A tiny image classifier ``[N, 1, 8, 8] -> 3 scores``: a torch.export program (MLflow's
        default) or a pickled module."""
        import torch

        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
        example = np.zeros((2, 1, 8, 8), dtype=np.float32)
        options: dict[str, Any] = {"serialization_format": "pickle"} if pickled else {}
        return self._log("pytorch", module, name, input_example=example, **options)

    def transformers(self, name: str, folder: Path) -> int:
        """A tiny BERT sentiment classifier, built from a config (nothing downloaded)."""
        import transformers

        vocab = folder / "vocab.txt"
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "day"]
        vocab.write_text("\n".join(words) + "\n", encoding="utf-8")
        tokenizer = transformers.BertTokenizerFast(str(vocab))
        labels = {0: "negative", 1: "positive"}
        config = transformers.BertConfig(
            vocab_size=len(words),
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=8,
            max_position_embeddings=16,
            num_labels=2,
            id2label=labels,
            label2id={v: k for k, v in labels.items()},
        )
        model = transformers.BertForSequenceClassification(config)
        pipeline = {"model": model, "tokenizer": tokenizer}
        return self._log("transformers", pipeline, name, task="text-classification")

    def alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))
