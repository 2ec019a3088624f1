"""Build contexts of registry sources (the in-process MLflow registry): each registry source is
frozen at the version it names now, imported pinned into the context's ``models/``, so the image
serves it without the registry; the user's repository and lock are never written to."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelport.cli.deploy import deploy_files
from modelport.cli.examples import train_example
from modelport.cli.main import app
from modelport.model.card import CARD_FILE
from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW
from tests.sources.conftest import MLFLOW_WARNINGS, LocalRegistry

pytestmark = MLFLOW_WARNINGS


def _listing(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _context(repo: Path | str, out: Path) -> str:
    said = io.StringIO()
    deploy_files("docker", Path(repo), out, Console(file=said, width=300), force=False)
    return said.getvalue()


def _cards(models: Path) -> list[dict[str, object]]:
    return [yaml.safe_load(card.read_text()) or {} for card in models.rglob(CARD_FILE)]


def test_a_repository_mixing_registry_and_folder_models_builds_frozen(
    local_registry: LocalRegistry,
    tmp_path: Path,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registrar = local_registry.registrar
    first = registrar.sklearn(
        "frozen-iris", LogisticRegression(max_iter=500).fit(registrar.x, registrar.y)
    )
    second = registrar.sklearn(
        "frozen-iris", LogisticRegression(C=0.1, max_iter=500).fit(registrar.x, registrar.y)
    )
    registrar.alias("frozen-iris", "champion", second)
    repo = tmp_path / "shop" / "models"
    train_example("iris", repo)
    canary = {"baseline": 1, "version": 2, "steps": [50, 100]}
    card = {
        "source": "models:/frozen-iris@champion",
        "follow": "canary",
        "traffic": {"canary": canary},
    }
    (repo / "flowers").mkdir()
    (repo / "flowers" / CARD_FILE).write_text(yaml.safe_dump(card))
    before = _listing(tmp_path / "shop")
    said = _context(repo, tmp_path / "out")
    assert f"Froze models:/frozen-iris@champion as flowers v{second} into the image" in said
    assert _listing(tmp_path / "shop") == before  # the repository and its lock untouched
    models = tmp_path / "out" / "models"
    assert sorted(p.name for p in (models / "flowers").iterdir()) == [str(second), CARD_FILE]
    assert (models / "flowers" / str(second) / "MLmodel").is_file()
    assert (models / "iris" / "1").is_dir()
    for card in _cards(models):
        assert not {"source", "follow", "traffic"} & set(card), card
    assert "shop" in (tmp_path / "out" / "Dockerfile").read_text()  # named after the project
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with make_client(models) as client:
        answer = client.post("/models/flowers/predict", json=IRIS_ROW)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-model-version"] == str(second)
        assert client.post("/models/iris/predict", json=IRIS_ROW).status_code == 200
        (flowers,) = [m for m in client.get("/models").json()["models"] if m["name"] == "flowers"]
        assert "source" not in flowers
    assert first != second


def test_a_registry_uri_builds_its_version_frozen(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    registrar = local_registry.registrar
    version = registrar.sklearn(
        "frozen-uri", LogisticRegression(max_iter=500).fit(registrar.x, registrar.y)
    )
    said = _context(f"models:/frozen-uri/{version}", tmp_path / "out")
    assert f"Froze models:/frozen-uri/{version} as frozen-uri v{version}" in said
    models = tmp_path / "out" / "models"
    assert (models / "frozen-uri" / str(version) / "MANIFEST.sha256").is_file()
    assert _cards(models)
    assert all("source" not in c for c in _cards(models))
    lock = (tmp_path / "out" / "modelport.lock").read_text()
    assert lock.count("frozen-uri") == 1  # the frozen version is pinned as trusted
    dry = CliRunner().invoke(app, ["build", f"models:/frozen-uri/{version}", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "COPY --chown" in dry.output
    assert "mlflow" not in dry.output  # the image needs no registry client


def test_a_registry_model_that_runs_its_own_code_is_built_only_when_trusted(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    """As `modelport serve` refuses it, a build refuses to freeze (and pin as trusted) a registry
    version that loads only by running its own code, unless `--trust models:/NAME` says so: the
    image's check would otherwise unpickle it during `docker build`."""
    from modelport.errors import UntrustedArtifact
    from modelport.sources.registry import trusted_paths

    version = local_registry.registrar.pyfunc("frozen-echo")
    uri = f"models:/frozen-echo/{version}"
    out = tmp_path / "out"
    with pytest.raises(UntrustedArtifact, match="add --trust models:/frozen-echo to the command"):
        _context(uri, out)
    assert not (out / "models").exists()  # nothing frozen, nothing pinned
    said = io.StringIO()
    trusted = trusted_paths([Path("models:/frozen-echo")])
    deploy_files("docker", Path(uri), out, Console(file=said), force=False, trusted=trusted)
    assert f"Froze {uri}" in said.getvalue()
    dry = CliRunner().invoke(app, ["build", uri, "--dry-run", "--trust", "models:/frozen-echo"])
    assert dry.exit_code == 0, dry.output
