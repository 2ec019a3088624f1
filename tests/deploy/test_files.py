"""Deploy never destroys or overwrites what modelport did not write: every target, run the way
the docs say (``deploy TARGET models --out .`` in a project folder), leaves the project's files
byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.cli.examples import train_example
from modelport.cli.main import main
from modelport.deploy import TARGETS
from modelport.deploy.files import MANIFEST


def hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trained") / "models"
    train_example("iris", path)
    return path


@pytest.fixture
def project(tmp_path: Path, trained: Path) -> Iterator[Path]:
    """A user's project: the model repository with its outcomes, and files of their own."""
    root = tmp_path / "acme-shop"
    (root / "models").mkdir(parents=True)
    for path in trained.rglob("*"):
        if path.is_file():
            target = root / "models" / path.relative_to(trained)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (root / "models" / ".modelport").mkdir()
    (root / "models" / ".modelport" / "outcomes.db").write_bytes(b"SQLite format 3\0 A/B data")
    (root / "README.md").write_text("# Acme shop\n")
    (root / "app.py").write_text("print('mine')\n")
    (root / "requirements.txt").write_text("scikit-learn\n")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("target", list(TARGETS))
def test_deploy_into_the_project_leaves_every_user_file_intact(
    project: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = hashes(project)
    code = run("deploy", target, "models", "--out", ".")
    after = hashes(project)
    assert {k: after.get(k) for k in before} == before  # byte-identical, none deleted
    if target == "huggingface":  # its README.md would replace the project's
        assert code == 2
        assert "README.md (not written by modelport)" in " ".join(capsys.readouterr().err.split())
        assert after == before
        return
    assert code == 0, capsys.readouterr().err
    written = set(json.loads((project / MANIFEST).read_text())["files"])
    assert set(after) - set(before) == written | {MANIFEST}
    assert not any(name.startswith("models/") for name in written)  # used in place, not copied
    if "Dockerfile" in written:
        assert "COPY --chown=10001:10001 models /models" in (project / "Dockerfile").read_text()
        assert "models/**/.*" in (project / ".dockerignore").read_text()  # outcomes.db stays out


def test_files_in_the_way_are_named_and_nothing_is_written(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Dockerfile").write_text("FROM scratch\n")
    (project / ".dockerignore").write_text("secret\n")
    (project / "wheels").mkdir()
    (project / "wheels" / "modelport-0.1.0-py3-none-any.whl").write_bytes(b"my own build")
    before = hashes(project)
    assert run("deploy", "render", "models", "--out", ".") == 2
    message = " ".join(capsys.readouterr().err.split())
    for name in ("Dockerfile", ".dockerignore", "wheels/modelport-0.1.0-py3-none-any.whl"):
        assert f"{name} (not written by modelport)" in message
    assert "--force" in message
    assert hashes(project) == before
    assert not (project / "render.yaml").exists()
    assert not (project / MANIFEST).exists()

    assert run("deploy", "render", "models", "--out", ".", "--force") == 0
    after = hashes(project)
    assert after["Dockerfile"] != before["Dockerfile"]
    assert {k: v for k, v in after.items() if k.startswith("models/")} == {
        k: v for k, v in before.items() if k.startswith("models/")
    }
    assert after["README.md"] == before["README.md"]


def test_rendering_again_replaces_only_unchanged_own_files(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("deploy", "railway", "models", "--out", ".") == 0
    assert run("deploy", "railway", "models", "--out", ".") == 0  # its own files: fine
    assert run("deploy", "render", "models", "--out", ".") == 0  # shares the Dockerfile
    assert (project / "railway.json").is_file()  # another target's files stay
    capsys.readouterr()
    (project / "Dockerfile").write_text((project / "Dockerfile").read_text() + "# my edit\n")
    assert run("deploy", "railway", "models", "--out", ".") == 2
    assert "Dockerfile (changed since modelport wrote it)" in " ".join(
        capsys.readouterr().err.split()
    )
    assert (project / "Dockerfile").read_text().endswith("# my edit\n")


def test_out_inside_the_repository_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = hashes(project)
    for out in ("models", "models/deploy"):
        assert run("deploy", "kubernetes", "models", "--out", out, "--force") == 2
        assert "inside the model repository" in " ".join(capsys.readouterr().err.split())
    assert hashes(project) == before


def test_a_copied_repository_is_refreshed_without_touching_user_files(
    project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ctx"
    assert run("deploy", "docker", "models", "--out", str(out)) == 0
    copied = out / "models" / "iris" / "1" / "model.joblib"
    assert copied.is_file()
    assert not (out / "models" / ".modelport").exists()  # outcomes are not packed
    (out / "models" / "notes.txt").write_text("mine")
    (project / "models" / "iris" / "1" / "model.joblib").rename(
        project / "models" / "iris" / "1" / "renamed.joblib"
    )
    (project / "models" / "iris" / "1" / "model.joblib.sha256").rename(
        project / "models" / "iris" / "1" / "renamed.joblib.sha256"
    )
    assert run("deploy", "docker", "models", "--out", str(out)) == 0
    assert not copied.exists()  # an earlier copy of ours, unchanged: replaced
    assert (out / "models" / "iris" / "1" / "renamed.joblib").is_file()
    assert (out / "models" / "notes.txt").read_text() == "mine"  # never ours: kept
