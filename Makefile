# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; re-running skips what is already installed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean-workspace strip

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

## Fetch the sample data and run all five notebooks in quick mode; outputs stay in ./workspace
demo: $(STAMP)
	$(PY) -m helpers.course demo

## The whole test suite, notebooks included
test: $(STAMP)
	$(PY) -m pytest -q

## Remove outputs and execution counts from the committed notebooks
strip: $(STAMP)
	$(PY) -m helpers.course strip notebooks/*.ipynb
