"""modelport: serve any trained model as a validated, documented, versioned HTTP API.

The public API is what ``__all__`` lists; modules starting with ``_`` are private. Names are
imported on first use, so ``import modelport.runtimes.sklearn`` loads no web framework.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from modelport._version import __version__

if TYPE_CHECKING:
    from modelport.core.cardfrom import card_from
    from modelport.core.dataplane import DataPlane
    from modelport.core.registry import Registry
    from modelport.core.result import InferenceResult
    from modelport.errors import ModelportError
    from modelport.model.card import ModelCard
    from modelport.model.signature import FieldSpec, ModelFacts, OutputSpec, Signature
    from modelport.runtimes import LoadContext, Outputs, Runtime
    from modelport.server.app import create_app
    from modelport.settings import Settings

_LAZY = {
    "DataPlane": "modelport.core.dataplane",
    "FieldSpec": "modelport.model.signature",
    "InferenceResult": "modelport.core.result",
    "LoadContext": "modelport.runtimes",
    "ModelCard": "modelport.model.card",
    "ModelFacts": "modelport.model.signature",
    "ModelportError": "modelport.errors",
    "OutputSpec": "modelport.model.signature",
    "Outputs": "modelport.runtimes",
    "Registry": "modelport.core.registry",
    "Runtime": "modelport.runtimes",
    "Settings": "modelport.settings",
    "Signature": "modelport.model.signature",
    "card_from": "modelport.core.cardfrom",
    "create_app": "modelport.server.app",
}

__all__ = [
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
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
