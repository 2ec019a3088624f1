"""``python -m bench``: the tutorial's reference app, modelport and the HTTP ceiling, one after
another in one run, driven by wrk at 1, 16 and 64 connections; results in ``bench/RESULTS.md``.

Options (environment): ``BENCH_SECONDS`` per wrk run (default 5), ``BENCH_CONNECTIONS``
(default ``1,16,64``), ``MODELPORT_SHARED`` (where ``seed/reference`` is).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
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


def _measure(
    name: str,
    model: str,
    command: list[str],
    port: int,
    ready: str,
    cwd: Path,
    env: dict[str, str],
    logs: Path,
    seconds: float,
    conns: list[int],
) -> Result:
    print(f"  {name} ({model}) ...", flush=True)
    log = logs / f"{name}-{model}.log".replace(" ", "_")
    with serve(command, port, ready, cwd, env, log) as running:
        result = Result(name, model, running)
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


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    conns = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,16,64").split(",")]
    reference.ensure_venv()
    modelport = reference.ensure_modelport_venv()
    ref_bin = reference.VENV / "bin"
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("HTTP ceiling ...", flush=True)
        port = free_port()
        results.append(
            _measure(
                "bare ASGI constant",
                "-",
                [
                    str(ROOT / ".venv/bin/python"),
                    "-m",
                    "uvicorn",
                    "bench.ceiling:app",
                    "--port",
                    str(port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                port,
                "/",
                ROOT,
                {},
                work,
                seconds,
                conns,
            )
        )
        for estimator, label in (("logistic", "LR"), ("forest", "RF")):
            ref = reference.workdir(estimator, work)
            repo = _modelport_repo(modelport, estimator, work, ref / "iris_model.pkl")
            port = free_port()
            results.append(
                _measure(
                    "tutorial, uvicorn 1 worker",
                    label,
                    [str(ref_bin / "uvicorn"), "main:app", "--port", str(port)],
                    port,
                    "/health",
                    ref,
                    {},
                    work,
                    seconds,
                    conns,
                )
            )
            port = free_port()
            results.append(
                _measure(
                    "tutorial, gunicorn 2 workers",
                    label,
                    [
                        str(ref_bin / "gunicorn"),
                        "main:app",
                        "-w",
                        "2",
                        "-k",
                        "uvicorn.workers.UvicornWorker",
                        "--bind",
                        f"127.0.0.1:{port}",
                    ],
                    port,
                    "/health",
                    ref,
                    {},
                    work,
                    seconds,
                    conns,
                )
            )
            for workers in (1, 2):
                port = free_port()
                results.append(
                    _measure(
                        f"modelport, {workers} worker{'s' if workers > 1 else ''}",
                        label,
                        [
                            str(modelport),
                            "serve",
                            str(repo),
                            "--port",
                            str(port),
                            "--host",
                            "127.0.0.1",
                            "--workers",
                            str(workers),
                        ],
                        port,
                        "/ready",
                        work,
                        {"MODELPORT_ACCESS_LOG": "false"},
                        work,
                        seconds,
                        conns,
                    )
                )
        print("overload ...", flush=True)
        slow = work / "slow" / "slow"
        (slow / "1").mkdir(parents=True)
        (slow / "1" / "model.fake").write_text("fake\n")
        (slow / "modelport.yaml").write_text(overload.CARD)
        port = free_port()
        with serve(
            [str(modelport), "serve", str(slow.parent), "--port", str(port), "--host", "127.0.0.1"],
            port,
            "/ready",
            work,
            {"MODELPORT_ACCESS_LOG": "false"},
            work / "slow.log",
        ) as running:
            phases = overload.run(running.url, seconds)
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
