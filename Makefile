# sem-denoise: the two front-door commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= default

# Telemetry off: DVC and Prefect analytics try the network.
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run repro test test-all bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned first: on this machine torch==2.13.0 is a local CPU build; anything else pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,bm3d]'
	touch $(STAMP)

setup: $(STAMP)

## Run the whole pipeline on the embedded default profile: Prefect 3 in ephemeral mode (no server),
## local Dask threads, CPU. Every stage is cached by content, so a rerun recomputes nothing.
run: $(STAMP)
	$(VENV)/bin/sem-denoise pipeline --profile $(PROFILE)
	@$(PY) -m sem_cli.where --params params.yaml --profile $(PROFILE)

## The same stages through DVC (what data scientists run): dvc repro.
repro: $(STAMP)
	$(VENV)/bin/dvc repro
	@$(PY) -m sem_cli.where --params params.yaml

## Set up and run the tests (fast, CPU-only; slow and GPU tests excluded).
test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "not gpu"

bench: $(STAMP)
	$(PY) bench/synth_throughput.py --quick
