# Weft: every target sets up .venv first (torch 2.13.0 CPU build, then the project).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test-data demo quality inspection test lint unit bench clean
# Real images and their names (image near-dup tests, the corpora of weft.data): Debian's emoji
# font, CLDR's names and keywords, Unicode's emoji groups and names, openclipart's drawings
# (PNG and SVG), the Symbola font, and Fashion-MNIST's photographs (the transfer set).
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
CLDR_NAMES := /usr/share/unicode/cldr/common/annotations/en.xml
EMOJI_TEST := /usr/share/unicode/emoji/emoji-test.txt
CLIPART_PNG := /usr/share/openclipart/png
CLIPART_SVG := /usr/share/openclipart/svg
SYMBOLA := /usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
# WordNet's noun index (weft.wordnet: the gold labels' related words).
WORDNET := /usr/share/wordnet/index.noun
# The browser the search page's test drives (headless, through Selenium).
CHROMEDRIVER := /usr/bin/chromedriver

$(BIN)/.weft-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/.weft-installed

$(EMOJI_FONT) $(CLDR_NAMES) $(EMOJI_TEST) $(CLIPART_PNG) $(CLIPART_SVG) $(SYMBOLA):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-noto-color-emoji \
		unicode-cldr-core unicode-data openclipart-png openclipart-svg fonts-symbola

test-data: $(EMOJI_FONT) $(CLDR_NAMES) $(EMOJI_TEST) $(CLIPART_PNG) $(CLIPART_SVG) $(SYMBOLA) \
	$(FASHION_MNIST) $(CHROMEDRIVER) $(WORDNET)

$(WORDNET):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends wordnet-base

$(CHROMEDRIVER):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver

$(FASHION_MNIST):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends dataset-fashion-mnist

demo: setup  ## the end-to-end demo on embedded defaults
	$(BIN)/weft demo

quality: setup test-data  ## every figure of docs/quality.md's quality tables, in MLflow
	$(BIN)/weft quality

inspection: setup test-data  ## the inspector's sets, training, promotion and docs/inspection.md's tables
	$(BIN)/weft inspection

test: setup test-data lint  ## lint, type-check, then the whole suite (unit + integration)
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check platform tests
	$(BIN)/mypy

unit: setup test-data
	$(BIN)/pytest -m "not integration"

bench: setup test-data  ## benchmarks print figures; nothing in them is a timed assertion
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m tests.perf.bench_curate
	$(BIN)/python -m tests.perf.bench_near_dedup
	$(BIN)/python -m tests.perf.bench_image_dedup
	$(BIN)/python -m tests.perf.bench_sampling
	$(BIN)/python -m tests.perf.bench_train
	$(BIN)/python -m tests.perf.bench_sweep
	$(BIN)/python -m tests.perf.bench_fashion_mnist  # needs: apt-get install dataset-fashion-mnist
	$(BIN)/python -m tests.perf.bench_index
	$(BIN)/python -m tests.perf.bench_serve  # serves the champions of `make demo`
	$(BIN)/python -m tests.perf.bench_query drawings-clip@champion  # the index of `make quality`

clean:
	rm -rf .weft .pytest_cache .mypy_cache .ruff_cache
