"""The public API is what ``modelport.__all__`` lists, and importing it has no side effects."""

from __future__ import annotations

import subprocess
import sys

import modelport

PUBLIC = {
    "DataPlane",
    "FieldSpec",
    "InferenceResult",
    "LoadContext",
    "ModelCard",
    "ModelFacts",
    "ModelportError",
    "OutputSpec",
    "Outputs",
    "Registry",
    "Runtime",
    "Settings",
    "Signature",
    "__version__",
    "card_from",
    "create_app",
}


def test_all_is_the_public_api() -> None:
    assert set(modelport.__all__) == PUBLIC
    for name in modelport.__all__:
        assert getattr(modelport, name) is not None


def test_import_has_no_side_effects() -> None:
    code = (
        "import logging, os, sys; before = dict(os.environ); import modelport, modelport.asgi, "
        "modelport.cli.main; assert dict(os.environ) == before; "
        "assert not logging.getLogger().handlers; assert 'app' not in vars(modelport.asgi)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PORT": "not-read-at-import"})


def test_the_lower_layers_import_no_web_framework_and_no_outcome_store() -> None:
    code = (
        "import sys, modelport, modelport.runtimes.sklearn, modelport.batching, "
        "modelport.deploy.context, modelport.core.dataplane; "
        "loaded = [m for m in ('fastapi', 'starlette', 'uvicorn', 'modelport.outcomes.store', "
        "'modelport.server.app', 'prometheus_client') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
