# What humans and CI both run. `make serve` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODELS ?=
PYTEST_ARGS ?=
# pytest-xdist processes for `make test` (each test file stays in one; 0: none)
PYTEST_WORKERS ?= 2

.PHONY: serve test check imports lint typecheck format install install-dev clean coverage-batching bench grpc-stubs fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[pandas]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Serve the default Iris model (trained on first run) on 0.0.0.0:$${PORT:-8000}
serve: $(VENV)/.installed
	$(BIN)/modelport serve $(MODELS)

## Lint, type-check and run the whole test suite
test: check
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(MAKE) --no-print-directory coverage-batching

## The batching scheduler keeps 100% branch coverage
coverage-batching: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q tests/batching/test_scheduler.py --cov=modelport --cov-branch --cov-report=
	$(BIN)/python -m coverage report --include='*/modelport/batching/*' --show-missing --fail-under=100

check: lint typecheck imports

## import-linter: the layers, independent runtimes, no cycles
imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## Benchmark issue 12's targets against the tutorial's reference app; writes bench/RESULTS.md
## (about 5 minutes at the default BENCH_SECONDS=5). Smoke run: BENCH_SECONDS=1 BENCH_ONLY=lr;
## other switches (BENCH_CONNECTIONS, BENCH_ROUNDS, BENCH_PROFILE=1, BENCH_RESULTS): see bench/__main__.py
bench: $(VENV)/.installed-dev
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench

## Regenerate the gRPC module from src/modelport/protocols/grpc_v2/open_inference.proto
grpc-stubs: $(VENV)/.installed-dev
	$(BIN)/python -m tests.protocols.grpc_stubs

## schemathesis over every operation, 1 and 2 workers, FUZZ_EXAMPLES cases per operation and every
## phase (make test runs a quick, derandomized pass of the same test)
fuzz: $(VENV)/.installed-dev
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} $(BIN)/python -m pytest -q --timeout=3600 tests/e2e/test_schemathesis.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
