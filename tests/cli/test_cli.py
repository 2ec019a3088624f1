"""The CLI, through ``main`` in process (commands call library functions)."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from modelport.cli.main import main
from modelport.model.integrity import pinned_sha256
from tests.helpers import IRIS_ROW, write_fake_model


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cancer_pickle(path: Path) -> Path:
    """A breast-cancer classifier saved with joblib, without a pinned hash."""
    x, y = load_breast_cancer(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=5000).fit(x, y), path)
    return path


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out.startswith("modelport 0.")


def test_import_then_validate_two_models(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    raw = cancer_pickle(tmp_path / "cancer.pkl")
    repo = tmp_path / "models"
    code, out, _ = run(
        capsys,
        "import",
        str(raw),
        "--name",
        "cancer",
        "--repo",
        str(repo),
        "--class-names",
        "malignant,benign",
    )
    assert code == 0, out
    artifact = repo / "cancer" / "1" / "model.pkl"
    assert pinned_sha256(artifact) is not None
    code, out, _ = run(capsys, "examples", "train", "iris", "--repo", str(repo))
    assert code == 0
    code, out, _ = run(capsys, "validate", str(repo))
    assert code == 0, out
    assert out.count("ready") == 2
    assert "cancer" in out
    assert "setosa" in out


def test_validate_reports_failures_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_fake_model(tmp_path, "good")
    write_fake_model(tmp_path, "bad", parameters={"load_error": "corrupt weights"})
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 1
    assert "failed" in out
    assert "corrupt weights" in out


def test_untrusted_pickle_is_refused_with_the_command_to_fix_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    raw = cancer_pickle(tmp_path / "loose.joblib")
    x, _ = load_breast_cancer(return_X_y=True)
    code, _, err = run(capsys, "predict", str(raw), "--data", "{}")
    assert code == 2
    assert "refusing to load" in err
    assert "modelport pin" in err
    code, out, _ = run(
        capsys,
        "predict",
        str(raw),
        "--data",
        json.dumps({f"x{i}": float(v) for i, v in enumerate(x[0])}),
        "--trust",
        str(raw),
    )
    assert code == 0, out
    assert json.loads(out)["prediction"] == 0


@pytest.fixture
def iris_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    repo = tmp_path / "models"
    assert run(capsys, "examples", "train", "iris", "--repo", str(repo))[0] == 0
    return repo


def test_predict_one_record(capsys: pytest.CaptureFixture[str], iris_repo: Path) -> None:
    code, out, _ = run(capsys, "predict", str(iris_repo), "--data", json.dumps(IRIS_ROW))
    assert code == 0
    assert json.loads(out)["prediction"] == "setosa"


def test_predict_bad_record_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], iris_repo: Path
) -> None:
    code, _, err = run(capsys, "predict", str(iris_repo), "--data", '{"sepal_length": -1}')
    assert code == 2
    assert "sepal_length: Input should be greater than 0" in err


def test_predict_csv_file_to_csv(
    capsys: pytest.CaptureFixture[str], iris_repo: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    lines = ["sepal_length,sepal_width,petal_length,petal_width"]
    lines += ["5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3"] * 1500
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "out.csv"
    code, _, err = run(
        capsys, "predict", str(iris_repo), "--input", str(source), "--output", str(target)
    )
    assert code == 0, err
    assert "Wrote 3000 predictions" in err
    rows = target.read_text().splitlines()
    assert rows[0].split(",")[4:] == [
        "prediction",
        "probability",
        "p_setosa",
        "p_versicolor",
        "p_virginica",
    ]
    assert len(rows) == 3001
    assert rows[1].split(",")[4] == "setosa"
    assert rows[2].split(",")[4] == "virginica"


def test_predict_jsonl_to_stdout_names_the_bad_row(
    capsys: pytest.CaptureFixture[str], iris_repo: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(IRIS_ROW) + "\n" + json.dumps({**IRIS_ROW, "petal_width": 99}))
    code, _, err = run(capsys, "predict", str(iris_repo), "--input", str(source))
    assert code == 2
    assert "row.1.petal_width: Input should be less than or equal to 10" in err
    source.write_text(json.dumps([IRIS_ROW, IRIS_ROW]))
    source = source.rename(tmp_path / "in.json")
    code, out, _ = run(capsys, "predict", str(iris_repo), "--input", str(source))
    assert code == 0
    assert [json.loads(line)["prediction"] for line in out.splitlines()] == ["setosa"] * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--data", "{}", "--input", "x.csv"], "exactly one of --data or --input"),
        (["examples", "train", "titanic"], "unknown example"),
        (["examples", "train", "wine", "--framework", "cobol"], "has no 'cobol' version"),
        (["serve", "/nonexistent/models"], "no such file or folder"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in " ".join((out + err).split())


def test_bad_environment_setting_is_reported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, iris_repo: Path
) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    code, _, err = run(capsys, "serve", str(iris_repo))
    assert code == 2
    assert "invalid setting" in err
    assert "port" in err
    assert "not-a-port" in err


def test_serve_refuses_an_untrusted_pickle_before_starting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    raw = tmp_path / "loose.pkl"
    joblib.dump(LogisticRegression(), raw)
    code, _, err = run(capsys, "serve", str(raw), "--port", "1")
    assert code == 2
    assert "refusing to load" in err
    assert f"--trust {raw}" in " ".join(err.split())


def test_the_repository_option_is_spelt_either_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--repo`` (import, examples) and ``--models`` (experiments) name the same thing: each
    command takes both."""
    repo = tmp_path / "models"
    assert run(capsys, "examples", "train", "iris", "--models", str(repo))[0] == 0
    assert (repo / "iris" / "1").is_dir()
    code, _, said = run(capsys, "experiments", "list", "--repo", str(repo))
    assert code == 2  # no prediction was recorded there yet: the store it looked for is repo's
    assert f"no outcome store at {repo / '.modelport' / 'outcomes.db'}" in said
