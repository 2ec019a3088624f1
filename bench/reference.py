"""The baseline: the tutorial's reference app from ``../shared/seed/reference/``, unchanged, in a
virtual environment of its own pinned requirements (plus gunicorn for its Render command)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MODELPORT_SHARED", ROOT.parent / "shared"))
SOURCE = SHARED / "seed" / "reference"
VENV = ROOT / "bench" / ".venv-ref"
MODELPORT_VENV = ROOT / "bench" / ".venv-modelport"

TRAIN = """
import pickle, sys
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
if sys.argv[1] == "forest":
    model = RandomForestClassifier(n_estimators=100, random_state=0)
else:
    model = LogisticRegression(max_iter=1000)
with open("iris_model.pkl", "wb") as f:
    pickle.dump(model.fit(x, y), f)
"""


def python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    if python().exists():
        return
    if not SOURCE.is_dir():
        raise SystemExit(f"the reference app is not at {SOURCE}; set MODELPORT_SHARED")
    print(f"creating {VENV} with the reference app's requirements ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(SOURCE / "requirements.txt"), "gunicorn"], check=True)


def workdir(estimator: str, parent: Path) -> Path:
    """A folder holding the reference ``main.py`` and its ``iris_model.pkl`` for ``estimator``."""
    folder = parent / f"reference-{estimator}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCE / "main.py", folder / "main.py")
    subprocess.run([str(python()), "-c", TRAIN, estimator], cwd=folder, check=True)
    return folder


def ensure_modelport_venv(onnx: bool = False, profiler: bool = False, grpc: bool = False) -> Path:
    """modelport from this working tree (editable), with the reference's numpy and
    scikit-learn, so both serve the same pickle with the same library (scikit-learn 1.9's forest
    predicts one row about 2x slower than 1.5's). Its extras only when asked: ``onnx`` for the
    ONNX-twin line, ``grpc`` for the gRPC row, ``profiler`` for py-spy; shipped defaults are
    measured without them."""
    modelport = MODELPORT_VENV / "bin" / "modelport"
    pins = [
        line.strip()
        for line in (SOURCE / "requirements.txt").read_text().splitlines()
        if line.strip().startswith(("numpy", "scikit-learn"))
    ]
    extras = [name for name, wanted in (("onnx", onnx), ("grpc", grpc)) if wanted]
    spec = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
    extra = ["py-spy"] if profiler else []
    print(f"installing {spec} (editable) with {', '.join(pins + extra)} in {MODELPORT_VENV} ...")
    if not modelport.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MODELPORT_VENV)], check=True)
    venv_python = str(MODELPORT_VENV / "bin" / "python")
    pip = [venv_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", spec, *pins, *extra], check=True)
    # pandas is an extra, and scikit-learn imports it whenever it is there (+27 MB a worker): a
    # venv made before it left the base install must not measure it
    subprocess.run(
        [venv_python, "-m", "pip", "uninstall", "--quiet", "--yes", "pandas"],
        check=True,
        capture_output=True,
    )
    # The servers must run this tree's code, not an older install left in the venv.
    where = subprocess.run(
        [venv_python, "-c", "import modelport; print(modelport.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to((ROOT / "src").resolve()):
        raise SystemExit(f"{MODELPORT_VENV} imports modelport from {where}, not from {ROOT}/src")
    return modelport


def py_spy() -> Path | None:
    """py-spy from the modelport venv (``BENCH_PROFILE=1`` installs it there) or the PATH."""
    local = MODELPORT_VENV / "bin" / "py-spy"
    if local.exists():
        return local
    found = shutil.which("py-spy")
    return Path(found) if found else None
