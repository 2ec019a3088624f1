"""``python -m bench``: the targets of issue 12, measured in one run. The tutorial's reference app
(uvicorn, 1 worker) is the baseline; modelport runs with its shipped defaults, and once more with
outcome recording, metrics and the access log all off; wrk drives each at 1, 16 and 64
connections; results in ``bench/RESULTS.md``.

Options (environment):

- ``BENCH_SECONDS``: seconds per wrk run (default 5).
- ``BENCH_CONNECTIONS``: connection counts (default ``1,16,64``; the targets need all three).
- ``BENCH_ONLY``: comma-separated groups to run (default ``ceiling,lr,rf,overload``): ``ceiling``
  (bare ASGI app), ``lr`` and ``rf`` (the tutorial and modelport lines for that model),
  ``overload`` (a slow model past its queue), ``onnx`` (an extra RandomForest line through its
  ONNX twin; no target uses it; not in the default set), ``grpc`` (Iris LR over gRPC beside
  REST, with Triton's Python clients: :mod:`bench.grpc`).
- ``BENCH_ROUNDS``: paired rounds (default 5; 0: none), servers up together and driven in turn
  (:mod:`bench.paired`): the tutorial, the shipped defaults and all off for LR at 64
  connections; the tutorial and the defaults for RF at 64 and for LR at 1 connection. Every
  target that compares two servers (4x, 50x, 85 %, p50 and p99) reads the median of its rounds'
  ratios; the single runs are reported beside it.
- ``BENCH_PROFILE=1``: install py-spy in the bench's modelport venv and record a flame graph of
  modelport (1 worker, LR and RF) during an extra 64-connection run, saved beside the results.
- ``BENCH_RESULTS``: where to write the report (default ``bench/RESULTS.md``).
- ``MODELPORT_SHARED``: where ``seed/reference`` is.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench import grpc, overload, paired, reference, report
from bench.procs import Running, free_port, serve, tree_rss_mb
from bench.wrk import Load, drive

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GROUPS = ("ceiling", "lr", "rf", "overload", "grpc")
GROUPS = (*DEFAULT_GROUPS, "onnx")
ALL_OFF = {
    "MODELPORT_OUTCOMES": "false",
    "MODELPORT_METRICS": "false",
    "MODELPORT_ACCESS_LOG": "false",
}
PROFILE_CONNECTIONS = 64
# (model, estimator, connections, with the all-off line): the paired rounds' comparisons
PAIRED = (("LR", "logistic", 64, True), ("RF", "forest", 64, False), ("LR", "logistic", 1, False))


@dataclass(frozen=True)
class Options:
    seconds: float
    conns: list[int]
    only: tuple[str, ...]
    profile: bool
    results: Path
    rounds: int

    @classmethod
    def from_env(cls) -> Options:
        only = tuple(
            g.strip().lower()
            for g in os.environ.get("BENCH_ONLY", ",".join(DEFAULT_GROUPS)).split(",")
            if g.strip()
        )
        if unknown := [g for g in only if g not in GROUPS]:
            raise SystemExit(f"BENCH_ONLY: unknown {', '.join(unknown)}; pick from {GROUPS}")
        return cls(
            seconds=float(os.environ.get("BENCH_SECONDS", "5")),
            conns=[int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,16,64").split(",")],
            only=only,
            profile=os.environ.get("BENCH_PROFILE", "") not in ("", "0", "false"),
            results=Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "RESULTS.md")).resolve(),
            rounds=_rounds(os.environ.get("BENCH_ROUNDS", "5")),
        )


@dataclass
class Profile:
    """The flame graph of an extra, unmeasured run, or why there is none."""

    path: Path | None
    load: Load | None
    error: str = ""


@dataclass
class Result:
    name: str
    model: str
    running: Running
    loads: list[Load] = field(default_factory=list)
    profile: Profile | None = None
    loaded_rss_mb: float = 0.0  # all processes after the load (the outcome writer process too)


@dataclass(frozen=True)
class Target:
    """One server to measure: ``command`` gets the port to bind."""

    name: str
    model: str
    command: Callable[[int], list[str]]
    ready: str
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    profile: bool = False  # BENCH_PROFILE records this one


def _profile(running: Running, out: Path, seconds: float) -> Profile:
    spy = reference.py_spy()
    if spy is None:
        return Profile(None, None, "py-spy not found (BENCH_PROFILE=1 installs it)")
    duration = max(1, math.ceil(seconds))
    print(f"    profiling with py-spy for {duration} s -> {out}", flush=True)
    command = [
        str(spy),
        "record",
        "--pid",
        str(running.pid),
        "--subprocesses",
        "--rate",
        "100",
        "--duration",
        str(duration),
        "--format",
        "flamegraph",
        "--output",
        str(out),
    ]
    spying = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.3)  # let it attach
    load = drive(running.url + "/predict", PROFILE_CONNECTIONS, seconds, running.pid)
    try:
        output, _ = spying.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        spying.kill()
        output, _ = spying.communicate()
    if spying.returncode != 0 or not out.exists():
        return Profile(None, load, f"py-spy failed: {output.strip()[-300:]}")
    return Profile(out, load)


def _measure(target: Target, logs: Path, opts: Options) -> Result:
    print(f"  {target.name} ({target.model}) ...", flush=True)
    log = logs / f"{target.name}-{target.model}.log".replace(" ", "_").replace(",", "")
    port = free_port()
    with serve(target.command(port), port, target.ready, target.cwd, target.env, log) as running:
        result = Result(target.name, target.model, running)
        for c in opts.conns:
            result.loads.append(drive(running.url + "/predict", c, opts.seconds, running.pid))
        result.loaded_rss_mb = tree_rss_mb(running.pid)
        if target.profile and opts.profile:
            out = opts.results.parent / f"profile-{target.model.lower()}-{PROFILE_CONNECTIONS}.svg"
            result.profile = _profile(running, out, opts.seconds)
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


def _tutorial(label: str, ref: Path, workers: int) -> Target:
    ref_bin = reference.VENV / "bin"
    if workers == 1:  # as the tutorial runs it locally, access log on
        return Target(
            report.TUTORIAL,
            label,
            lambda p: [str(ref_bin / "uvicorn"), "main:app", "--port", str(p)],
            "/health",
            ref,
        )
    return Target(  # its Render command
        report.GUNICORN,
        label,
        lambda p: [
            str(ref_bin / "gunicorn"),
            "main:app",
            "-w",
            str(workers),
            "-k",
            "uvicorn.workers.UvicornWorker",
            "--bind",
            f"127.0.0.1:{p}",
        ],
        "/health",
        ref,
    )


def _modelport(
    modelport: Path,
    name: str,
    label: str,
    repo: Path,
    workers: int,
    env: dict[str, str] | None = None,
    profile: bool = False,
) -> Target:
    """A modelport line serving its own fresh copy of ``repo`` (no outcomes from a former line)."""
    own = repo.with_name(f"{repo.name}-{name}".replace(" ", "-").replace(",", ""))
    shutil.copytree(repo, own)
    return Target(
        name,
        label,
        lambda p: [
            str(modelport),
            "serve",
            str(own),
            "--port",
            str(p),
            "--host",
            "127.0.0.1",
            "--workers",
            str(workers),
        ],
        "/ready",
        own.parent,
        env or {},
        profile,
    )


def _targets(modelport: Path, work: Path, only: tuple[str, ...]) -> list[Target]:
    targets = []
    if "ceiling" in only:
        python = str(reference.MODELPORT_VENV / "bin" / "python")
        targets.append(
            Target(
                report.CEILING,
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
        )
    for estimator, label in (("logistic", "LR"), ("forest", "RF")):
        group = label.lower()
        onnx = label == "RF" and "onnx" in only
        if group not in only and not onnx:
            continue
        ref = reference.workdir(estimator, work)
        repo = _modelport_repo(modelport, estimator, work, ref / "iris_model.pkl")
        if group in only:
            # Shipped defaults and "all off" back to back, so the machine's moods hit both alike.
            targets += [
                _tutorial(label, ref, 1),
                _modelport(modelport, report.MP1, label, repo, 1, profile=True),
                _modelport(modelport, report.ALL_OFF_1, label, repo, 1, ALL_OFF),
            ]
            if label == "LR":
                targets += [
                    _modelport(modelport, report.MP2, label, repo, 2),
                    _tutorial(label, ref, 2),  # context for --workers 2; no target uses it
                ]
        if onnx:
            twin = _onnx_twin(modelport, repo)
            targets.append(_modelport(modelport, report.ONNX, label, twin, 1))
    return targets


def _paired(modelport: Path, work: Path, opts: Options) -> list[paired.Rounds]:
    """Paired rounds for the targets that compare two servers: the tutorial, the shipped
    defaults and all off (LR, 64 connections: 4x and 85 %); the tutorial and the defaults for RF
    at 64 connections (50x) and for LR at 1 connection (p50 and p99)."""
    found = []
    for model, estimator, connections, all_off in _paired_wanted(opts):
        print(f"paired rounds ({model}, {connections} connections) ...", flush=True)
        ref, repo = work / f"reference-{estimator}", work / f"modelport-{estimator}"
        tag = f"{model} {connections}"
        targets = [
            (report.TUTORIAL, _tutorial(model, ref, 1)),
            (report.MP1, _modelport(modelport, f"paired defaults {tag}", model, repo, 1)),
        ]
        if all_off:
            off = _modelport(modelport, f"paired all off {tag}", model, repo, 1, ALL_OFF)
            targets.append((report.ALL_OFF_1, off))
        servers = [paired.Server(name, t.command, t.ready, t.cwd, t.env) for name, t in targets]
        found.append(paired.run(servers, model, connections, opts.seconds, opts.rounds, work))
    return found


def _paired_wanted(opts: Options) -> list[tuple[str, str, int, bool]]:
    """The comparisons of :data:`PAIRED` this run measures: none without rounds, and only those
    whose model and connection count run (its targets need the single runs too)."""
    if not opts.rounds:
        return []
    return [p for p in PAIRED if p[0].lower() in opts.only and p[2] in opts.conns]


def _overload(modelport: Path, work: Path, seconds: float) -> list[overload.Run]:
    print("overload ...", flush=True)
    _raise_open_files(overload.OVERLOAD_PER_WORKER * 2 + 1024)
    slow = work / "slow" / "slow"
    (slow / "1").mkdir(parents=True)
    (slow / "1" / "model.fake").write_text("fake\n")
    (slow / "modelport.yaml").write_text(overload.CARD)
    env = {"MODELPORT_ACCESS_LOG": "false", "MODELPORT_OUTCOMES": "false"}
    runs = []
    for workers in (1, 2):
        port = free_port()
        command = [
            str(modelport),
            "serve",
            str(slow.parent),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--workers",
            str(workers),
        ]
        log = work / f"slow-{workers}.log"
        with serve(command, port, "/ready", work, env, log):
            runs.append(overload.run(port, seconds, workers))
    return runs


def _raise_open_files(wanted: int) -> None:
    """4,096 connections per worker need as many descriptors in the client (``ulimit -n``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            print(f"  ulimit -n is {target}: overload runs with fewer connections", flush=True)


def _grpc(modelport: Path, work: Path, seconds: float) -> grpc.GrpcRow:
    print("grpc beside REST (LR) ...", flush=True)
    repo = work / "grpc-models"
    subprocess.run(
        [str(modelport), "examples", "train", "iris", "--repo", str(repo)],
        check=True,
        capture_output=True,
    )
    port, grpc_port = free_port(), free_port()
    command = [str(modelport), "serve", str(repo), "--port", str(port), "--host", "127.0.0.1"]
    command += ["--grpc-port", str(grpc_port)]
    with serve(command, port, "/ready", work, {}, work / "grpc.log"):
        return grpc.run(f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", seconds)


def _model_costs(work: Path) -> dict[str, dict[str, object]]:
    """What each model costs in-process, with the servers' scikit-learn (none running)."""
    python = str(reference.MODELPORT_VENV / "bin" / "python")
    costs = {}
    for estimator, label in (("logistic", "LR"), ("forest", "RF")):
        pickle = work / f"reference-{estimator}" / "iris_model.pkl"
        if pickle.exists():
            print(f"  model cost in-process ({label}) ...", flush=True)
            done = subprocess.run(
                [python, "-m", "bench.modelcost", str(pickle)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            costs[label] = json.loads(done.stdout)
    return costs


def main() -> None:
    opts = Options.from_env()
    cells = _cells(opts)
    print(
        f"bench: {', '.join(opts.only)}; {len(opts.conns)} connection counts x "
        f"{opts.seconds:g} s; {cells} wrk runs, about {cells * opts.seconds / 60:.1f} min of load",
        flush=True,
    )
    if {"lr", "rf", "onnx"} & set(opts.only):
        reference.ensure_venv()
    modelport = reference.ensure_modelport_venv(
        onnx="onnx" in opts.only, profiler=opts.profile, grpc="grpc" in opts.only
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = [_measure(t, work, opts) for t in _targets(modelport, work, opts.only)]
        rounds = _paired(modelport, work, opts)
        costs = _model_costs(work)
        phases = _overload(modelport, work, opts.seconds) if "overload" in opts.only else []
        grpc_row = _grpc(modelport, work, opts.seconds) if "grpc" in opts.only else None
    machine = (
        f"{os.cpu_count()} cores, {platform.machine()}, {_cpu()}, Python {sys.version.split()[0]}"
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    run = report.Run(when, machine, opts.seconds, opts.conns, opts.only, os.cpu_count() or 1)
    text = report.render(results, phases, costs, run, opts.results.parent, grpc_row, rounds)
    opts.results.write_text(text)
    print(text)
    print(f"written to {opts.results}")


def _cells(opts: Options) -> int:
    """wrk runs of this selection (the overload phases and a profile run count as one each)."""
    per_group = {"ceiling": 1, "lr": 5, "rf": 3, "onnx": 1}
    servers = sum(per_group.get(g, 0) for g in opts.only)
    profiled = sum(1 for group in ("lr", "rf") if group in opts.only) if opts.profile else 0
    extra = (4 if "overload" in opts.only else 0) + profiled
    extra += 2 if "grpc" in opts.only else 0
    extra += sum((3 if all_off else 2) * opts.rounds for *_, all_off in _paired_wanted(opts))
    return servers * len(opts.conns) + extra


def _rounds(value: str) -> int:
    rounds = int(value)
    if rounds < 0:
        raise SystemExit(f"BENCH_ROUNDS: {value} is below 0")
    return rounds


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
