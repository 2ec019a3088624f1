"""MLflow's lightgbm, pytorch and transformers flavors, logged through the MLflow client into an
in-process registry, loaded through modelport's own runtimes, and answering with the signature
MLflow recorded; what loads only by running code is refused with the exact ``--trust`` command,
and a cached version whose files changed is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport.core.registry import ModelState, ModelVersion, Registry
from modelport.core.repository import registry_source
from modelport.sources.registry import registry_refusals, trusted_paths
from tests.e2e.mlflow_registry import COLUMNS
from tests.helpers import IRIS_ROW
from tests.sources.conftest import MLFLOW_WARNINGS, LocalRegistry

pytestmark = MLFLOW_WARNINGS


def _version(uri: str, trust: list[str] | None = None) -> ModelVersion:
    """The one version ``uri`` names, loaded as a server loads it."""
    source = registry_source(uri)
    registry = Registry([source], trusted=trusted_paths([Path(t) for t in trust or []]))
    registry.load_all()
    (version,) = registry.models[source.name].versions.values()
    return version


def _answer(version: ModelVersion, record: dict[str, Any]) -> Any:
    loaded = version.loaded
    assert loaded is not None, version.detail
    rows = loaded.rows([loaded.request.model_validate(record)])
    return loaded.runtime.predict(rows).predictions[0]


def _refused(version: ModelVersion, name: str, why: str) -> None:
    assert version.state is ModelState.FAILED
    assert why in str(version.detail)
    assert f"add --trust models:/{name} to the command" in str(version.detail)


def test_a_lightgbm_booster_serves_with_the_mlflow_signature(
    local_registry: LocalRegistry,
) -> None:
    number = local_registry.registrar.lightgbm("flavor-lgb", booster=True)
    version = _version(f"models:/flavor-lgb/{number}")
    assert version.card.runtime == "lightgbm"
    loaded = version.loaded
    assert loaded is not None, version.detail
    assert [f.name for f in loaded.signature.inputs] == COLUMNS
    assert loaded.signature.classes == [0, 1, 2]
    assert _answer(version, IRIS_ROW) == 0  # setosa


def test_a_lightgbm_classifier_in_skops_needs_trust_for_its_types(
    local_registry: LocalRegistry,
) -> None:
    number = local_registry.registrar.lightgbm("flavor-lgbm-sk", booster=False)
    uri = f"models:/flavor-lgbm-sk/{number}"
    refused = _version(uri)
    _refused(refused, "flavor-lgbm-sk", "lightgbm.sklearn.LGBMClassifier")
    assert "skops does not trust by default" in str(refused.detail)
    trusted = _version(uri, ["models:/flavor-lgbm-sk"])
    assert trusted.loaded is not None, trusted.detail
    assert [f.name for f in trusted.loaded.signature.inputs] == COLUMNS
    assert _answer(trusted, IRIS_ROW) == 0


def test_a_torch_export_program_needs_trust_and_serves_its_tensor_shape(
    local_registry: LocalRegistry,
) -> None:
    """torch.export.load unpickles: modelport's rule for pickles holds for the registry too."""
    number = local_registry.registrar.pytorch("flavor-torch")
    uri = f"models:/flavor-torch/{number}"
    _refused(_version(uri), "flavor-torch", "model.pt2 is a torch.export program")
    version = _version(uri, ["models:/flavor-torch"])
    assert version.card.runtime == "torch"
    loaded = version.loaded
    assert loaded is not None, version.detail
    assert loaded.signature.image is not None
    assert loaded.signature.image.shape == (1, 8, 8)  # from MLflow's tensor signature
    assert loaded.signature.classes == [0, 1, 2]
    assert _answer(version, {"image": [[[0.5] * 8] * 8]}) in (0, 1, 2)


def test_a_pickled_torch_module_is_refused_with_the_command(
    local_registry: LocalRegistry,
) -> None:
    number = local_registry.registrar.pytorch("flavor-torch-pickle", pickled=True)
    uri = f"models:/flavor-torch-pickle/{number}"
    _refused(_version(uri), "flavor-torch-pickle", "a pickled PyTorch module (model.pth)")
    source = registry_source(uri)  # what `modelport serve` says before any worker starts
    served = [(source.card, path) for path in source.versions.values()]
    (refusal,) = registry_refusals(served, [], uri).values()
    assert f"modelport serve {uri} --trust models:/flavor-torch-pickle" in refusal.message
    assert not registry_refusals(served, trusted_paths([Path("models:/flavor-torch-pickle")]), uri)


def test_a_transformers_model_serves_pinned_at_first_download(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    number = local_registry.registrar.transformers("flavor-bert", tmp_path)
    version = _version(f"models:/flavor-bert/{number}")  # safetensors: no --trust needed
    assert version.card.runtime == "transformers"
    loaded = version.loaded
    assert loaded is not None, version.detail
    assert [f.name for f in loaded.signature.inputs] == ["text"]
    assert loaded.signature.classes == ["negative", "positive"]
    assert _answer(version, {"text": "good day"}) in ("negative", "positive")
    config = local_registry.cache / "flavor-bert" / str(number) / "model" / "config.json"
    config.write_text(config.read_text().replace('"negative"', '"NEGATIVE"'))
    tampered = _version(f"models:/flavor-bert/{number}")
    assert tampered.state is ModelState.FAILED
    assert "changed after it was written" in str(tampered.detail)


def test_a_tampered_cached_file_is_refused(local_registry: LocalRegistry) -> None:
    number = local_registry.registrar.lightgbm("flavor-tampered", booster=True)
    uri = f"models:/flavor-tampered/{number}"
    assert _version(uri).state is ModelState.READY
    model = local_registry.cache / "flavor-tampered" / str(number) / "model.lgb"
    model.write_text(model.read_text().replace("num_leaves", "num_leaves_"))
    tampered = _version(uri)
    assert tampered.state is ModelState.FAILED
    assert "model.lgb has sha256" in str(tampered.detail)
    assert "changed after it was written" in str(tampered.detail)
