"""schemathesis over every operation of a real server, on 1 worker and on 2 (gunicorn): no
server error, only declared statuses, and bodies that fit their declared schemas.

About a thousand generated cases per server, derandomized so that every run sends the same
ones. ``make fuzz`` runs many more (``FUZZ_EXAMPLES`` per operation, every phase, the outcome
store on)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import copy_repository, running_server

pytestmark = pytest.mark.e2e

ADMIN_KEY = "fuzz-admin-key"
INFERENCE_KEY = "fuzz-inference-key"
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))  # per operation, in the fuzzing phase
LONG = EXAMPLES > 8  # make fuzz: the slow paths too (the outcome store, the stateful phase)


# Feedback for a request id the store does not know waits up to 1 s for other workers' writers
# (modelport.outcomes.feedback): in the quick run, POST /feedback gets only a few generated
# bodies (its bad input is tested case by case in tests/protocols); make fuzz sends it all.
QUICK_CONFIG = """
[[operations]]
include-name = "POST /feedback"
phases.coverage.enabled = false
generation.max-examples = 3
"""


def _schemathesis(url: str, workdir: Path, headers: dict[str, str]) -> str:
    config = workdir / "schemathesis.toml"
    config.write_text("" if LONG else QUICK_CONFIG)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--generation-deterministic",  # the same cases every run (no example database)
        "--phases",
        "examples,coverage,fuzzing,stateful" if LONG else "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=3000, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20000:]
    return output


def _cases(output: str) -> int:
    found = re.search(r"(\d+) generated, (\d+) passed", output)
    assert found is not None, output[-5000:]
    assert found.group(1) == found.group(2), output[-5000:]
    return int(found.group(1))


@pytest.mark.timeout(600 if not LONG else 3600)
@pytest.mark.parametrize(
    ("workers", "keyed"),
    [("1", True), ("2", False)],
    ids=["1-worker-with-keys", "2-workers-anonymous"],
)
def test_schemathesis_finds_nothing(repo: Path, tmp_path: Path, workers: str, keyed: bool) -> None:
    """1 worker: both keys set and sent, so every handler meets the generated input; 2 workers:
    both keys set and none sent, so every protected route answers its declared 401/403."""
    models = tmp_path / "models"
    copy_repository(repo, models)
    shutil.rmtree(models / ".modelport", ignore_errors=True)  # a store of its own
    env = {
        "MODELPORT_ADMIN_KEY": ADMIN_KEY,
        "MODELPORT_INFERENCE_KEY": INFERENCE_KEY,
    }
    headers = {"X-Admin-Key": ADMIN_KEY, "X-Api-Key": INFERENCE_KEY} if keyed else {}
    args = [str(models), "--workers", workers]
    with running_server(args, tmp_path / "log", env) as server:
        output = _schemathesis(server.url, tmp_path, headers)
        assert server.process.poll() is None
    assert _cases(output) >= 500
