# Weft: every target sets up .venv first (torch 2.13.0 CPU build, then the project).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint unit bench clean

$(BIN)/.weft-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/.weft-installed

demo: setup  ## the end-to-end demo on embedded defaults
	$(BIN)/weft demo

test: setup lint  ## lint, type-check, then the whole suite (unit + integration)
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check platform tests
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -m "not integration"

bench: setup  ## benchmarks print figures; nothing in them is a timed assertion
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m tests.perf.bench_curate
	$(BIN)/python -m tests.perf.bench_near_dedup
	$(BIN)/python -m tests.perf.bench_sampling
	$(BIN)/python -m tests.perf.bench_train
	$(BIN)/python -m tests.perf.bench_fashion_mnist  # needs: apt-get install dataset-fashion-mnist

clean:
	rm -rf .weft .pytest_cache .mypy_cache .ruff_cache
