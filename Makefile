PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each test file stays in one process. xdist hands out the files
# with the most tests first (measured: 14 min 49 s whole; with --no-loadscope-reorder and the
# longest files first, not faster on a loaded machine).
TEST_WORKERS ?= 3

.PHONY: venv test lint demo schema replay-record bench bench-ingest bench-ingest-lock bench-burst clean

venv: $(VENV)/.installed

# Reinstall only when the dependencies change.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo: venv
	$(BIN)/riposte demo $(DEMO_ARGS)

schema: venv
	$(BIN)/riposte schema > playbooks/schema.json

# Re-record tests/replay (seed events, cassettes, expected report) against a local moto server.
replay-record: venv
	$(BIN)/python -m tests.replay.record

bench: venv
	$(BIN)/python bench/engine.py

bench-ingest: venv
	$(BIN)/python bench/ingest.py

bench-ingest-lock: venv
	$(BIN)/python bench/ingest_lock.py $(BENCH_ARGS)

bench-burst: venv
	$(BIN)/python -m bench.burst $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
