# `make synth` and `make test` work on a fresh machine with Python 3.11+, Node.js/npm and make.
# Installs happen only when requirements.txt or package-lock.json change.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PYTHON := $(VENV)/bin/python
# The pinned Node.js 22 from package.json runs the CDK CLI and jsii, ahead of any system Node.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
# Extra CDK arguments, e.g. make synth ARGS="-c gpuNodeCount=1"
ARGS ?=
STACKS ?= --all

.PHONY: help setup synth test lint diff preflight deploy destroy plan update-snapshots clean
.PHONY: smoke verify-efa nccl-test bench pause resume

help:
	@echo "make synth | test | lint | plan | preflight | diff | deploy | destroy | update-snapshots | clean"
	@echo "after deploy: make smoke | verify-efa | bench | nccl-test (disruptive) | pause | resume"
	@echo "Pass CDK context with ARGS, e.g. make plan ARGS='-c gpuInstanceType=p5.48xlarge'"

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

synth: setup
	cdk synth --quiet $(ARGS)

test: setup
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

plan: setup
	$(PYTHON) -m planning.plan_report $(ARGS)

diff: setup
	cdk diff $(STACKS) $(ARGS)

# Read-only account checks with your AWS credentials; `make deploy` runs them first.
preflight: setup
	$(PYTHON) -m ops.preflight $(ARGS)

# SKIP_PREFLIGHT=1 deploys without the checks.
deploy: setup $(if $(filter 1,$(SKIP_PREFLIGHT)),,preflight)
	cdk deploy $(STACKS) --concurrency 4 --require-approval broadening $(ARGS)

destroy: setup
	cdk destroy $(STACKS) $(ARGS)

# Operator commands (ops/). smoke reads ENDPOINT_URL and API_KEY from the environment when set
# (then it needs no AWS); the cluster commands take KUBECONFIG_FILE=<path> instead of the
# stack outputs.
OPS_KUBECONFIG = $(if $(KUBECONFIG_FILE),--kubeconfig $(KUBECONFIG_FILE))

smoke: setup
	$(PYTHON) -m ops.smoke

verify-efa: setup
	$(PYTHON) -m ops.verify_efa $(OPS_KUBECONFIG)

bench: setup
	$(PYTHON) -m ops.bench $(OPS_KUBECONFIG) $(BENCH_ARGS)

# Disruptive: vLLM is scaled to 0 for the test and restored afterwards.
nccl-test: setup
	$(PYTHON) -m ops.nccl_test $(OPS_KUBECONFIG) $(ARGS)

# GPU nodes and vLLM to 0; cluster, file system and weights stay. Pass the same ARGS as deploy.
pause: setup
	cdk deploy --all --concurrency 4 --require-approval broadening $(ARGS) -c paused=true

resume: setup
	cdk deploy --all --concurrency 4 --require-approval broadening $(ARGS) -c paused=false

update-snapshots: setup
	$(PYTHON) -m pytest tests/test_snapshots.py --snapshot-update

clean:
	rm -rf cdk.out .pytest_cache
