# Studio Runner. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test unit integration e2e infra synth bench clean venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt lambdas/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The demo: run examples/demo.ipynb through the state machine against the local Studio stand-in.
demo: venv
	$(PY) -m localstudio run examples/demo.ipynb -p who='"Studio Runner"' -o build/demo-output.ipynb

## The whole test suite.
test: venv node_modules/.installed build/wheelhouse/.downloaded
	$(PY) -m pytest -q tests

## Synthesize the stack into cdk.out. Wheels for the Lambda runtime are fetched first (the one
## step that needs PyPI); `cdk synth` itself then runs offline.
synth: venv node_modules/.installed build/wheelhouse/.downloaded
	npx --no-install cdk synth --no-notices --quiet

build/wheelhouse/.downloaded: lambdas/requirements.txt infra/bundling.py
	$(PY) -m infra.bundling download
	touch $@

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules cdk.out build
