# mateval: one target per thing a person does; each is a thin call into the `mateval` command line.
#   make bench MODEL=matformer          train, evaluate and score a model on its default tasks
#   make test                           the whole test suite
#   make report                         HTML report of every run in results/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
MODEL ?= matformer
BACKEND ?= auto
SEEDS ?= 1
DATA ?= subset
RESULTS ?= results
ARGS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.mateval-installed

.PHONY: venv bench test report models clean-venv

venv: $(STAMP)

# torch first and alone, so that no other requirement makes pip resolve a different torch build
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)" "setuptools>=68"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

bench: $(STAMP)
	$(BIN)/mateval bench --model $(MODEL) --backend $(BACKEND) --data $(DATA) --results-dir $(RESULTS) \
		$(shell seq -s ' ' -f '--seed %g' 0 $$(( $(SEEDS) - 1 ))) $(ARGS)

report: $(STAMP)
	$(BIN)/mateval report --results-dir $(RESULTS) $(ARGS)

models: $(STAMP)
	$(BIN)/mateval models

test: $(STAMP)
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
