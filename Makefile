# Two commands for a fresh machine: `make run` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
WITH_VENV := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: run test smoke lint lint-python lint-containers install

install:
	VENV=$(VENV) bash scripts/install.sh

## Run the whole pipeline (dvc repro) on the defaults in params.yaml.
run: install
	$(WITH_VENV) $(BIN)/dvc repro

## Run the whole test suite.
test: install
	$(WITH_VENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

## The whole pipeline at the smoke profile (profiles/smoke.yaml) as a DVC experiment: the
## workspace does not change (scripts/smoke.sh --temp; CI and images run it in place).
smoke: install
	$(WITH_VENV) bash scripts/smoke.sh --temp

## Static checks.
lint: lint-python lint-containers

lint-python: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Dockerfiles, workflow, compose file and shell scripts (scripts/lint-containers.sh).
lint-containers: install
	$(WITH_VENV) bash scripts/lint-containers.sh
