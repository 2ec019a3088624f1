"""``python -m bench``: the tutorial's reference app, modelport and the HTTP ceiling, one after
another in one run, driven by wrk at 1, 16 and 64 connections; results in ``bench/RESULTS.md``.

Options (environment): ``BENCH_SECONDS`` per wrk run (default 5), ``BENCH_CONNECTIONS``
(default ``1,16,64``), ``MODELPORT_SHARED`` (where ``seed/reference`` is).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench import overload, reference, report
from bench.procs import Running, free_port, serve
from bench.wrk import Load, drive

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    name: str
    model: str
    running: Running
    loads: list[Load] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """One server to measure: ``command`` gets the port to bind."""

    name: str
    model: str
    command: Callable[[int], list[str]]
    ready: str
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


def _measure(target: Target, logs: Path, seconds: float, conns: list[int]) -> Result:
    print(f"  {target.name} ({target.model}) ...", flush=True)
    log = logs / f"{target.name}-{target.model}.log".replace(" ", "_").replace(",", "")
    port = free_port()
    with serve(target.command(port), port, target.ready, target.cwd, target.env, log) as running:
        result = Result(target.name, target.model, running)
        for c in conns:
            result.loads.append(drive(running.url + "/predict", c, seconds))
    return result


def _modelport_repo(modelport: Path, estimator: str, parent: Path, pickle: Path) -> Path:
    """The Iris example's card, serving (as version 2) the very pickle the baseline loads."""
    repo = parent / f"modelport-{estimator}"
    for command in (
        ["examples", "train", "iris", "--repo", str(repo), "--estimator", estimator],
        ["import", str(pickle), "--name", "iris", "--repo", str(repo)],
    ):
        subprocess.run([str(modelport), *command], check=True, capture_output=True)
    return repo


def _onnx_twin(modelport: Path, repo: Path) -> Path:
    """A copy of ``repo`` whose card says ``runtime: auto``, with the ONNX twin converted."""
    twin = repo.with_name(repo.name + "-onnx")
    shutil.copytree(repo, twin)
    subprocess.run(
        [str(modelport), "convert", str(twin), "--model", "iris"], check=True, capture_output=True
    )
    card = twin / "iris" / "modelport.yaml"
    card.write_text(card.read_text().replace("runtime: sklearn", "runtime: auto"))
    return twin


def _targets(modelport: Path, work: Path) -> list[Target]:
    ref_bin = reference.VENV / "bin"
    quiet = {"MODELPORT_ACCESS_LOG": "false"}
    python = str(ROOT / ".venv" / "bin" / "python")
    targets = [
        Target(
            "bare ASGI constant",
            "-",
            lambda p: [
                python,
                "-m",
                "uvicorn",
                "bench.ceiling:app",
                "--port",
                str(p),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            "/",
            ROOT,
        )
    ]
    for estimator, label in (("logistic", "LR"), ("forest", "RF")):
        ref = reference.workdir(estimator, work)
        repo = _modelport_repo(modelport, estimator, work, ref / "iris_model.pkl")

        def mp(workers: int, repo: Path = repo) -> Callable[[int], list[str]]:
            return lambda p: [
                str(modelport),
                "serve",
                str(repo),
                "--port",
                str(p),
                "--host",
                "127.0.0.1",
                "--workers",
                str(workers),
            ]

        targets += [
            Target(
                "tutorial, uvicorn 1 worker",
                label,
                lambda p: [str(ref_bin / "uvicorn"), "main:app", "--port", str(p)],
                "/health",
                ref,
            ),
            Target(
                "tutorial, gunicorn 2 workers",
                label,
                lambda p: [
                    str(ref_bin / "gunicorn"),
                    "main:app",
                    "-w",
                    "2",
                    "-k",
                    "uvicorn.workers.UvicornWorker",
                    "--bind",
                    f"127.0.0.1:{p}",
                ],
                "/health",
                ref,
            ),
            Target("modelport, 1 worker", label, mp(1), "/ready", work, quiet),
            Target("modelport, 2 workers", label, mp(2), "/ready", work, quiet),
        ]
        if estimator == "forest":
            twin = _onnx_twin(modelport, repo)
            targets.append(
                Target("modelport, 1 worker, ONNX twin", label, mp(1, twin), "/ready", work, quiet)
            )
    return targets


def _overload(modelport: Path, work: Path, seconds: float) -> tuple[overload.Phase, overload.Phase]:
    print("overload ...", flush=True)
    slow = work / "slow" / "slow"
    (slow / "1").mkdir(parents=True)
    (slow / "1" / "model.fake").write_text("fake\n")
    (slow / "modelport.yaml").write_text(overload.CARD)
    port = free_port()
    command = [
        str(modelport),
        "serve",
        str(slow.parent),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    env = {"MODELPORT_ACCESS_LOG": "false"}
    with serve(command, port, "/ready", work, env, work / "slow.log") as running:
        return overload.run(running.url, seconds)


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    conns = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,16,64").split(",")]
    reference.ensure_venv()
    modelport = reference.ensure_modelport_venv()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = [_measure(t, work, seconds, conns) for t in _targets(modelport, work)]
        phases = _overload(modelport, work, seconds)
    machine = (
        f"{os.cpu_count()} cores, {platform.machine()}, {_cpu()}, Python {sys.version.split()[0]}"
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = report.render(results, phases, when, machine, seconds)
    (ROOT / "bench" / "RESULTS.md").write_text(text)
    print(text)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
