"""modelport: serve any trained model as a validated, documented, versioned HTTP API.

The public API is what ``__all__`` lists; modules starting with ``_`` are private.
"""

from modelport._version import __version__
from modelport.app import create_app
from modelport.card import ModelCard
from modelport.dataplane import DataPlane, InferenceResult
from modelport.errors import ModelportError
from modelport.registry import Registry
from modelport.runtimes import LoadContext, Outputs, Runtime
from modelport.settings import Settings
from modelport.signature import FieldSpec, ModelFacts, OutputSpec, Signature

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
    "create_app",
]
