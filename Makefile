# mateval: one target per thing a person does; each is a thin call into the `mateval` command line.
#   make bench MODEL=matformer          train, evaluate and score a model on its default tasks
#   make test                           the whole test suite (each model's own tests in its environment)
#   make report                         HTML report of every run in results/
#   make bench MODEL=matformer BACKEND=docker [BASE_IMAGE=mateval/local-base:latest] [GPUS=0,1]
#   make local-base-image               stand-in base image for hosts that reach no registry
#   make build MODEL=matformer          build the model's Docker image (and the base)
#   make local-slurm                    a real one-node Slurm cluster on this machine (root)
#   make bench GRID=examples/grid-small.yaml BACKEND=slurm [RESUME=1]   a grid on Slurm
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
MODEL ?= matformer
BACKEND ?=
GRID ?=
RESUME ?=
SEEDS ?= 1
DATA ?= subset
RESULTS ?= results
BASE_IMAGE ?=
GPUS ?= all
ARGS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
# the torch of the models' own environments (orchestrator/envs.py), as of .venv
export MATEVAL_TORCH_SPEC ?= $(TORCH_SPEC)
STAMP := $(VENV)/.mateval-installed

.PHONY: venv bench test report models build local-base-image local-slurm image-locks clean-venv

venv: $(STAMP)

# torch first and alone, so that no other requirement makes pip resolve a different torch build
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)" "setuptools>=68"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

# GRID=file runs a grid file (its models, tasks, seeds and data) instead of MODEL/SEEDS/DATA.
bench: $(STAMP)
	$(BIN)/mateval bench $(if $(GRID),--grid $(GRID),--model $(MODEL) --data $(DATA) \
		$(shell seq -s ' ' -f '--seed %g' 0 $$(( $(SEEDS) - 1 )))) \
		$(if $(BACKEND),--backend $(BACKEND)) $(if $(filter 1 yes true,$(RESUME)),--resume) \
		--results-dir $(RESULTS) --gpus $(GPUS) $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)) $(ARGS)

build: $(STAMP)
	$(BIN)/mateval build --model $(MODEL) $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))

local-base-image: $(STAMP)
	$(BIN)/mateval local-base-image

local-slurm: $(STAMP)
	$(BIN)/mateval local-slurm

# Recompile the images' hash-pinned locks (needs network; pip-tools in a throw-away venv): every
# images/<name>/ holding a requirements.in, images/base first (the others are constrained by its lock).
IMAGE_LOCK_DIRS := $(filter-out images/base,$(patsubst %/requirements.in,%,$(sort $(wildcard images/*/requirements.in))))
image-locks: $(STAMP)
	@test -x build/pip-tools/bin/pip-compile || ($(PYTHON) -m venv build/pip-tools && build/pip-tools/bin/pip install --quiet pip-tools)
	$(BIN)/python -m orchestrator.locks --pip-compile build/pip-tools/bin/pip-compile images/base
	$(if $(IMAGE_LOCK_DIRS),$(BIN)/python -m orchestrator.locks --pip-compile build/pip-tools/bin/pip-compile $(IMAGE_LOCK_DIRS))

report: $(STAMP)
	$(BIN)/mateval report --results-dir $(RESULTS) $(ARGS)

models: $(STAMP)
	$(BIN)/mateval models

# Each model's own tests (images/<name>/tests/) in that model's environment (created on first use,
# see orchestrator/envs.py), then the main suite in .venv; fails if any of them failed.
test: $(STAMP)
	@status=0; tools=$$($(BIN)/python -m orchestrator.envs test-tools) || exit 1; \
	for model in $$($(BIN)/python tests/run_model_tests.py --list); do \
	  python=$$($(BIN)/python -m orchestrator.envs python $$model) || exit 1; \
	  echo "== $$model: images/$$model/tests in its own environment ($$python)"; \
	  $(BIN)/python tests/run_model_tests.py $$model --python $$python --extra-path $$tools -- -q -ra || status=1; \
	done; \
	echo "== the main suite (tests/) in $(VENV)"; \
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS) || status=1; \
	exit $$status

clean-venv:
	rm -rf $(VENV)
