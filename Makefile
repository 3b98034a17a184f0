PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each test file stays in one process, the longest files first
# (tests/conftest.py LONGEST_FILES; xdist would otherwise order files by their number of tests).
TEST_WORKERS ?= 3

.PHONY: venv test lint demo schema bench bench-ingest bench-ingest-lock bench-burst clean

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

test: lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

demo: venv
	$(BIN)/riposte demo $(DEMO_ARGS)

schema: venv
	$(BIN)/riposte schema > playbooks/schema.json

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
