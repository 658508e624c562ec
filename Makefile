# Two commands a newcomer needs: `make serve` and `make test`. Both create the venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= examples/apex.yaml

$(BIN)/apex-ai-proxy: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

.PHONY: install serve test lint bench
install: $(BIN)/apex-ai-proxy

serve: install
	$(BIN)/apex-ai-proxy serve --config $(CONFIG)

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# The bench extra holds the library stacks the baselines compare our HTTP layer with.
bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench.run
