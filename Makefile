# Set-up and the two entry points. Each target creates .venv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

# Installs torch first (the pinned local CPU build), then the package; the stamp files make
# repeated runs skip the installation.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch-installed: $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	touch $@

# `rnnlab info` builds the compiled oneDNN backend once (cached in ~/.cache/rnnlab; about 25 s)
# and says which implementation each cell runs; a failed build is reported, never fatal.
$(VENV)/.installed: $(VENV)/.torch-installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/rnnlab info
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The main job: every claim of the lecture as a measured experiment (about 6 minutes on 2 cores).
demo: $(VENV)/.installed
	$(BIN)/rnnlab lecture --out lecture-report

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/layers.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
