# Two commands for a fresh machine: `make run` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install

install:
	VENV=$(VENV) bash scripts/install.sh

## Run the whole pipeline (dvc repro) on the defaults in params.yaml.
run: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

## Run the whole test suite.
test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

## Static checks.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
