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

.PHONY: setup run repro test test-all bench client-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned first: on this machine torch==2.13.0 is a local CPU build; anything else pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,bm3d,client]'
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

## Set up and run the tests (fast, CPU-only; slow and GPU tests excluded). Under Xvfb when it is there: napari
## (the review client's tests) needs OpenGL, which Qt's offscreen platform lacks.
XVFB_RUN = if command -v xvfb-run >/dev/null 2>&1; then QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1200x24" $(1); \
  else echo "no xvfb-run: the napari tests skip"; $(1); fi
test: $(STAMP) client-deps
	@$(call XVFB_RUN,$(PY) -m pytest -q)

test-all: $(STAMP) client-deps
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
