# Two commands for a fresh machine: `make run` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
WITH_VENV := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: hooks run test smoke lint lint-python lint-containers lint-audit install lock lock-diff push pull \
	docker-build docker-build-cuda docker-run audit-image test-docker test-docker-cuda

## The venv from the lock, hashes checked (scripts/install.sh; README: Dependencies).
install:
	VENV=$(VENV) bash scripts/install.sh

## Regenerate the lock (requirements/*.txt) from pyproject.toml, keeping every pin that still fits;
## UPGRADE=1 moves every package to its newest allowed release, UPGRADE_PACKAGE=name one package.
lock:
	VENV=$(VENV) bash scripts/lock.sh $(if $(filter 1 yes true,$(UPGRADE)),--upgrade) \
		$(if $(UPGRADE_PACKAGE),--upgrade-package $(UPGRADE_PACKAGE))

## The locked versions that differ from BASE's (default origin/main).
lock-diff:
	bash scripts/lock-diff.sh $(BASE)

## Run the whole pipeline on the defaults in params.yaml: `dvc repro`'s stages, independent ones side
## by side on a core each (pml-ops repro; README: The pipeline). `dvc repro` runs them one at a time.
run: install
	$(WITH_VENV) $(BIN)/pml-ops repro

## Use the repository's git hooks (.githooks/commit-msg: subjects under 73 characters).
hooks:
	git config core.hooksPath .githooks

## Run the whole test suite.
test: install
	$(WITH_VENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

## The whole pipeline at the smoke profile (profiles/smoke.yaml) as a DVC experiment: the
## workspace does not change (scripts/smoke.sh --temp; CI and images run it in place).
smoke: install
	$(WITH_VENV) bash scripts/smoke.sh --temp

## Share through the default DVC remote (README: Sharing results): data, models and the run cache.
push: install
	$(WITH_VENV) $(BIN)/pml-ops remote check
	$(WITH_VENV) $(BIN)/dvc push --run-cache

## Get the committed study's data and models from the default DVC remote.
pull: install
	$(WITH_VENV) $(BIN)/pml-ops remote check
	$(WITH_VENV) $(BIN)/dvc pull

## Static checks.
lint: lint-python lint-containers

lint-python: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/function_length.py pml_ops pipelines

## Dockerfiles, workflow, compose file and shell scripts (scripts/lint-containers.sh).
lint-containers: install
	$(WITH_VENV) bash scripts/lint-containers.sh

## Known vulnerabilities of the locked packages (pip-audit; scripts/audit.py), also part of `make lint`:
## fails on one not accepted in requirements/audit-allow.toml; says so where no service answers.
lint: lint-audit
lint-audit: install
	$(BIN)/python scripts/audit.py requirements/dev.txt

## Containers (README: Containers). The images: pml-ops:cpu and pml-ops:cuda.
docker-build:
	bash scripts/docker-build.sh cpu

docker-build-cuda:
	bash scripts/docker-build.sh cuda

## Any command in the image on this checkout, e.g. make docker-run ARGS="dvc repro" (GPU image and
## --gpus all when nvidia-smi sees a GPU).
docker-run:
	bash scripts/docker-run.sh $(ARGS)

## The same audit on the packages installed in an image (`pip freeze --all` inside it).
IMAGE ?= pml-ops:cpu
audit-image: install
	$(BIN)/python scripts/audit.py --image $(IMAGE)

## The container tests alone (a Docker engine must answer: sudo scripts/docker-engine.sh start).
test-docker: install
	$(WITH_VENV) $(BIN)/python -m pytest -m docker $(PYTEST_ARGS)

## The CUDA image build and its CPU smoke run (downloads the CUDA wheels, several GB).
test-docker-cuda: install
	PML_OPS_DOCKER_CUDA=1 $(WITH_VENV) $(BIN)/python -m pytest -m docker_cuda $(PYTEST_ARGS)
