"""The first hour with modelport (issue 15): the tutorial's own pickle, names, examples from data,
a DataFrame pipeline, offline scoring that finishes, and hints that work as printed."""

from __future__ import annotations

import csv
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import modelport
from modelport.core.versions import add_version
from modelport.model.card import read_card
from tests.cli.test_cli import run
from tests.conftest import ClientFactory

IRIS_NAMES = "sepal_length,sepal_width,petal_length,petal_width"
SPECIES = "setosa,versicolor,virginica"
# the tutorial's curl body, byte for byte
TUTORIAL_BODY = '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'


def tutorial_pickle(folder: Path) -> Path:
    """``iris_model.pkl`` as the tutorial's reference app loads it: a RandomForest fitted on the
    bare ``iris.data`` array, pickled (as bench/reference.py makes it)."""
    x, y = load_iris(return_X_y=True)
    path = folder / "iris_model.pkl"
    with path.open("wb") as handle:
        pickle.dump(RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y), handle)
    return path


def customers(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    """A DataFrame with numeric and categorical columns, and whether each customer churned."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "region": rng.choice(["north", "south", "east"], rows),
            "monthly_fee": rng.uniform(5, 80, rows).round(2),
            "tenure_months": rng.integers(1, 60, rows),
        }
    )
    churned = (frame["monthly_fee"] / 80 - frame["tenure_months"] / 60 > 0).to_numpy()
    return frame, np.where(churned, "churns", "stays")


def churn_pipeline(frame: pd.DataFrame, labels: np.ndarray, unknown: str = "ignore") -> object:
    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["monthly_fee", "tenure_months"]),
            ("categories", OneHotEncoder(handle_unknown=unknown), ["plan", "region"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression()).fit(frame, labels)


def test_the_tutorials_pickle_with_names_answers_the_tutorials_curl(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_client: ClientFactory
) -> None:
    pkl = tutorial_pickle(tmp_path)
    repo = tmp_path / "models"
    code, _, err = run(
        capsys, "import", str(pkl), "--name", "iris", "--repo", str(repo),
        "--feature-names", IRIS_NAMES, "--class-names", SPECIES,
    )  # fmt: skip
    assert code == 0, err
    card = read_card(repo / "iris" / "modelport.yaml")
    assert card.signature is not None
    assert card.signature.inputs is not None
    assert [f.name for f in card.signature.inputs] == IRIS_NAMES.split(",")
    assert card.signature.output is not None
    assert card.signature.output.class_names == SPECIES.split(",")
    with make_client(repo) as client:
        answer = client.post(
            "/predict", content=TUTORIAL_BODY, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["prediction", "probability", "probabilities"]
    assert body["prediction"] == "setosa"
    assert len(body["probabilities"]) == 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--feature-names", "a,b,c"], "3 feature names given (a, b, c), but the model takes 4"),
        (["--feature-names", "a,b,c,a"], "feature names given twice: a"),
        (["--class-names", "setosa,other"], "2 class names given (setosa, other), but the model"),
        (
            ["--feature-names", "a,b,c,d", "--feature-names-from", "x.csv"],
            "give --feature-names or --feature-names-from, not both",
        ),
    ],
)
def test_names_that_do_not_fit_the_model_are_refused_clearly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], message: str
) -> None:
    pkl = tutorial_pickle(tmp_path)
    code, _, err = run(capsys, "import", str(pkl), "--name", "iris", "--repo", "models", *flags)
    assert code == 2
    assert message in " ".join(err.split())
    assert not (tmp_path / "models").exists()


def iris_csv(path: Path, header: str = IRIS_NAMES + ",species") -> Path:
    data = load_iris()
    lines = [header] + [
        ",".join([*(f"{v:g}" for v in row), data.target_names[t]])
        for row, t in zip(data.data, data.target, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_example_from_data_makes_swaggers_example_a_real_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_client: ClientFactory
) -> None:
    pkl = tutorial_pickle(tmp_path)
    data = iris_csv(tmp_path / "iris.csv")
    names = iris_csv(tmp_path / "names.csv", IRIS_NAMES)
    repo = tmp_path / "models"
    code, _, err = run(
        capsys, "import", str(pkl), "--name", "iris", "--repo", str(repo),
        "--feature-names-from", str(names), "--example-from", str(data),
        "--class-names", SPECIES,
    )  # fmt: skip
    assert code == 0, err
    card = yaml.safe_load((repo / "iris" / "modelport.yaml").read_text())
    sepal = card["signature"]["inputs"][0]
    assert sepal == {"name": "sepal_length", "ge": 0.0, "le": 16.0, "example": 5.1}
    with make_client(repo) as client:
        doc = client.get("/openapi.json").json()
        example = doc["components"]["schemas"]["IrisRequest"]["examples"][0]
        assert example == {
            "sepal_length": 5.1,
            "sepal_width": 3.5,
            "petal_length": 1.4,
            "petal_width": 0.2,
        }  # the first row of iris.csv, not 1.0 everywhere
        assert client.post("/predict", json=example).json()["prediction"] == "setosa"


def test_example_from_names_the_column_it_lacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pkl = tutorial_pickle(tmp_path)
    data = iris_csv(tmp_path / "iris.csv", "sepal_length,sepal_width,petal_length,petal_w,species")
    code, _, err = run(
        capsys, "import", str(pkl), "--name", "iris", "--repo", str(tmp_path / "models"),
        "--feature-names", IRIS_NAMES, "--example-from", str(data),
    )  # fmt: skip
    assert code == 2
    assert "has no column petal_width; its columns: sepal_length" in " ".join(err.split())


def test_card_from_a_dataframe_pipeline_then_import_with_the_card(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_client: ClientFactory
) -> None:
    frame, labels = customers()
    model = churn_pipeline(frame, labels)
    card = modelport.card_from(model, frame, class_names=["churns", "stays"])
    assert card.signature is not None
    assert card.signature.inputs is not None
    fields = {f.name: f for f in card.signature.inputs}
    assert fields["plan"].type == "str"
    assert fields["plan"].example == frame["plan"][0]
    assert fields["plan"].description == "Seen in the training data: basic, pro, team."
    assert fields["tenure_months"].example == int(frame["tenure_months"][0])
    assert (fields["monthly_fee"].ge, fields["monthly_fee"].le) == (0, 160)
    path = tmp_path / "churn.joblib"
    joblib.dump(model, path)
    saved = card.save(tmp_path / "churn.yaml")
    repo = tmp_path / "models"
    code, _, err = run(
        capsys, "import", str(path), "--name", "churn", "--repo", str(repo), "--card", str(saved)
    )
    assert code == 0, err
    with make_client(repo) as client:
        row = {"plan": "pro", "region": "west", "monthly_fee": 70.0, "tenure_months": 2}
        answer = client.post("/predict", json=row)
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction"] == "churns"  # an unseen region: the encoder ignores it


def test_card_from_keeps_the_choices_an_encoder_insists_on() -> None:
    frame, labels = customers()
    card = modelport.card_from(churn_pipeline(frame, labels, unknown="error"), frame)
    assert card.signature is not None
    assert card.signature.inputs is not None
    region = next(f for f in card.signature.inputs if f.name == "region")
    assert region.choices == ["east", "north", "south"]


def test_card_from_loads_no_web_framework() -> None:
    code = (
        "import sys, modelport; from sklearn.datasets import load_iris; "
        "from sklearn.linear_model import LogisticRegression; "
        "x, y = load_iris(return_X_y=True); "
        "card = modelport.card_from(LogisticRegression(max_iter=500).fit(x, y), x); "
        "assert card.signature.inputs[0].example == 5.1, card; "
        "loaded = [m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def tutorial_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    repo = tmp_path / "models"
    code, _, err = run(
        capsys, "import", str(tutorial_pickle(tmp_path)), "--name", "iris", "--repo", str(repo),
        "--feature-names", IRIS_NAMES, "--class-names", SPECIES,
    )  # fmt: skip
    assert code == 0, err
    return repo


def test_scoring_a_file_skips_bad_rows_and_lists_them(
    capsys: pytest.CaptureFixture[str], tutorial_repo: Path, tmp_path: Path
) -> None:
    source = tmp_path / "new.csv"
    source.write_text(
        f"{IRIS_NAMES}\n5.1,3.5,1.4,0.2\n6.7,,5.2,2.3\n6.7,abc,5.2,2.3\n6.3,3.3,6.0,2.5\n"
    )
    scored = tmp_path / "scored.csv"
    theirs = tmp_path / ".scored.csv.partial"  # a file of the user's where a partial could go
    theirs.write_text("the user's\n")
    args = ["predict", str(tutorial_repo), "--input", str(source), "--output", str(scored)]
    code, _, err = run(capsys, *args, "--on-error", "skip")
    assert code == 0, err
    assert theirs.read_text() == "the user's\n"
    assert [p.name for p in tmp_path.glob(".*partial")] == [theirs.name]  # none of ours left
    errors = tmp_path / "scored.errors.csv"
    assert f"Wrote 2 predictions to {scored}; skipped 2 bad rows, listed in {errors}" in " ".join(
        err.split()
    )
    rows = list(csv.DictReader(scored.read_text().splitlines()))
    assert [r["prediction"] for r in rows] == ["setosa", "virginica"]
    bad = list(csv.DictReader(errors.read_text().splitlines()))
    assert [(b["row"], b["line"], b["column"], b["value"]) for b in bad] == [
        ("1", "3", "sepal_width", ""),
        ("2", "4", "sepal_width", "abc"),
    ]
    assert bad[0]["reason"] == "missing value"
    assert "valid number" in bad[1]["reason"]


def test_scoring_a_file_stops_at_a_bad_row_by_default_and_writes_no_output(
    capsys: pytest.CaptureFixture[str], tutorial_repo: Path, tmp_path: Path
) -> None:
    source = tmp_path / "new.csv"
    source.write_text(f"{IRIS_NAMES}\n5.1,3.5,1.4,0.2\n6.7,,5.2,2.3\n")
    scored = tmp_path / "scored.csv"
    args = ["predict", str(tutorial_repo), "--input", str(source), "--output", str(scored)]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "row.1.sepal_width: missing value (line 3)" in err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["iris_model.pkl", "modelport.lock", "models", "new.csv"]


def hint(err: str, start: str) -> list[str]:
    """The command in the error that begins with ``start`` (to the end of its line)."""
    lines = [line for line in err.splitlines() if start in line]
    assert lines, err
    return shlex.split(lines[0][lines[0].index(start) :])


def test_the_unpinned_pickle_hints_work_as_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    repo = Path("models")
    x, y = load_iris(return_X_y=True)
    loose = tmp_path / "loose.pkl"
    loose.write_bytes(pickle.dumps(LogisticRegression(max_iter=500).fit(x, y)))
    add_version(repo, "flowers", loose, None)
    (repo / "flowers" / "1" / "model.pkl.sha256").unlink()  # as if copied in by hand
    Path("modelport.lock").unlink()  # and never pinned
    data = ["--data", '{"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2}']
    code, _, err = run(capsys, "predict", "models", *data)
    assert code == 2
    trust = hint(err, "run modelport predict")  # predict's own --trust, not serve's
    assert trust == ["run", "modelport", "predict", "models", *data, "--trust",
                     "models/flowers/1/model.pkl"]  # fmt: skip
    code, out, err = run(capsys, *trust[2:])
    assert code == 0, err
    assert '"prediction": 0' in out
    pin = hint(err_of(capsys, "serve", "models", "--port", "1"), "modelport pin")
    assert pin == ["modelport", "pin", "models"]
    assert run(capsys, *pin[1:])[0] == 0
    code, out, err = run(capsys, "predict", "models", *data)
    assert code == 0, err
    assert not (repo / "flowers" / "2").exists()  # pinned where it is, no copy
    loose.write_bytes(pickle.dumps(LogisticRegression(C=0.5, max_iter=500).fit(x, y)))  # no pin
    pin = hint(err_of(capsys, "predict", str(loose), *data), "modelport pin")
    assert pin == ["modelport", "pin", str(loose)]
    assert run(capsys, *pin[1:])[0] == 0
    assert run(capsys, "predict", str(loose), *data)[0] == 0


def err_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, _, err = run(capsys, *args)
    assert code == 2
    return err


def test_training_an_example_again_adds_no_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = str(tmp_path / "models")
    assert run(capsys, "examples", "train", "iris", "--repo", repo)[0] == 0
    code, out, _ = run(capsys, "examples", "train", "iris", "--repo", repo)
    assert code == 0
    assert "already holds iris (logistic): nothing added" in " ".join(out.split())
    assert sorted(p.name for p in (tmp_path / "models" / "iris").iterdir()) == [
        "1",
        "modelport.yaml",
    ]
    assert run(capsys, "examples", "train", "iris", "--repo", repo, "--estimator", "forest")[0] == 0
    assert (tmp_path / "models" / "iris" / "2").is_dir()  # another model: another version


def test_a_failed_example_run_leaves_no_version_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from modelport.cli.examples import digits

    def untrained(torch_module: object, x: object, y: object) -> object:
        return digits._network(torch)

    def broken_export(*args: object) -> None:
        raise RuntimeError("the ONNX exporter broke")

    monkeypatch.setattr(digits, "_train", untrained)  # seconds of training: not the point here
    monkeypatch.setattr(digits, "_export_onnx", broken_export)
    with pytest.raises(RuntimeError, match="the ONNX exporter broke"):
        digits.train_digits(tmp_path / "models")
    assert not (tmp_path / "models" / "digits").exists()


def test_a_failed_copy_leaves_no_version_and_no_model_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.core import versions

    def full_disk(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    pkl = tutorial_pickle(tmp_path)
    add_version(tmp_path / "models", "iris", pkl, None)
    monkeypatch.setattr(versions.shutil, "copyfile", full_disk)
    for name in ("iris", "fresh"):
        with pytest.raises(OSError, match="No space left"):
            add_version(tmp_path / "models", name, pkl, None)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["iris"]
    assert sorted(p.name for p in (tmp_path / "models" / "iris").iterdir()) == ["1"]
