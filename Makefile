# sem-denoise: the two front-door commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= default
# Exact versions of the whole environment (torch apart: installed first, pinned below). Refresh: `make lock`.
LOCK := requirements.lock
EXTRAS := dev,bm3d,remote
PIP_VERSION := 26.3
# The local S3 store (SeaweedFS) for the shared DVC remote: `make remote`, `make remote-down`.
STACK_DIR ?= .stack
S3_PORT ?= 15333

# Telemetry off: DVC and Prefect analytics try the network.
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run repro test test-all bench lock dvc-yaml remote remote-down

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==$(PIP_VERSION)
	# Pinned first: on this machine torch==2.13.0 is a local CPU build; anything else pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e '.[$(EXTRAS)]'
	touch $(STAMP)

## Refresh requirements.lock after changing pyproject.toml's dependencies: resolve, install, freeze (torch excluded).
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==$(PIP_VERSION) torch==2.13.0
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	( echo "# Exact versions installed by \`make setup\` (torch==2.13.0 is installed first). Refresh: \`make lock\`."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -i -E '^(torch|sem-denoise)==' ) > $(LOCK)

setup: $(STAMP)

## Run the whole pipeline on the embedded default profile: Prefect 3 in ephemeral mode (no server),
## local Dask threads, CPU. Every stage is cached by content, so a rerun recomputes nothing.
run: $(STAMP)
	$(VENV)/bin/sem-denoise pipeline --profile $(PROFILE)
	@# outputs byte-identical to dvc.lock go into DVC's cache, so `dvc repro` after `make run` reruns nothing
	$(PY) -m sem_pipeline.adopt
	@$(PY) -m sem_cli.where --params params.yaml --profile $(PROFILE)

## The same stages through DVC (what data scientists run): dvc repro.
repro: $(STAMP)
	$(VENV)/bin/dvc repro
	@$(PY) -m sem_cli.where --params params.yaml

## Regenerate dvc.yaml from the stage table (sem_pipeline/stages.py); a test fails when it is stale.
dvc-yaml: $(STAMP)
	$(VENV)/bin/sem-denoise stages dvc-yaml --write

## Start SeaweedFS (S3 on 127.0.0.1:$(S3_PORT), bucket sem-dvc) and point the DVC remote `storage` at it
## (endpoint and credentials in .dvc/config.local, never committed). Then: dvc push / dvc pull.
remote: $(STAMP)
	$(PY) -m sem_stack up --dir $(STACK_DIR) --no-postgres --s3-port $(S3_PORT) --buckets sem-dvc
	$(PY) -m sem_pipeline.remote --stack $(STACK_DIR)

remote-down:
	$(PY) -m sem_stack down --dir $(STACK_DIR)

## Set up and run the tests (fast, CPU-only; slow and GPU tests excluded).
test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "not gpu"

bench: $(STAMP)
	$(PY) bench/synth_throughput.py --quick
