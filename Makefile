# Studio Runner. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export PYTHONDONTWRITEBYTECODE := 1

# The Lambda runtime's Python (infra.bundling.RUNTIME), from pyenv on every machine here.
PYTHON313 ?= env PYENV_VERSION=3.13.0 python3.13
VENV313 := .venv313
BUNDLE := build/bundle
LAMBDA_SOURCES := $(shell find lambdas -name '*.py' -o -name 'requirements*.txt' -o -name '*.j2' -o -name conf.json)
# What `test-bundle` runs against the built bundle: the library's unit tests and the e2e runs
# through the local state machine that cover success, a failed cell, a cell spanning RunCells
# invocations, and ExecutionEnded's cleanup after an abort.
BUNDLE_TESTS := tests/unit \
	tests/e2e/test_run_notebook.py::test_success_saves_executed_notebook_and_leaves_nothing_running \
	tests/e2e/test_run_notebook.py::test_cell_error_fails_run_saves_output_and_cleans_up \
	tests/e2e/test_run_notebook.py::test_a_cell_longer_than_one_run_cells_invocation_keeps_all_its_output \
	tests/e2e/test_aborted.py::test_aborted_execution_is_cleaned_up

.PHONY: demo install test test-bundle peer-suites lint typecheck unit integration e2e infra synth bench clean venv kernels

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt lambdas/requirements.txt requirements-jupyterlab.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-jupyterlab.txt
	touch $@

## The `studio-runner` command with the [local] extra, installed editable (the checkout's code) and
## nothing else: not the CDK, linters, peers or test tools (`make test` adds those to the same venv).
## bench/README.md "Install size" measures it.
$(VENV)/.local-installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing studio-runner[local] into $(VENV): the local stack only, about 280 MB; 40 s to a few minutes, by the network…"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e ".[local]"
	@touch $@

install: $(VENV)/.local-installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The demo: run examples/demo.ipynb through the state machine against the local Studio stand-in.
demo: $(VENV)/.local-installed
	@$(VENV)/bin/studio-runner run --local examples/demo.ipynb -p who "Studio Runner" -o build/demo-output.ipynb

## The whole test suite, then the Lambda-side tests on the runtime's Python against the bundle.
## Three workers on two cores: most tests wait on kernels, servers and the state machine's
## Wait states, not on the CPU (measured: 12 min with -n 3 vs 19 min in one process).
PYTEST_WORKERS ?= 3

## The peer projects' own test notebooks (tests/peer_suites.py): ../shared/peer-suites beside the
## checkout, else (a clone on its own, as CI's) the same files, byte for byte, from the pinned peers'
## source distributions on PyPI (tests/fetch_peer_suites.py): without them their tests would skip.
SHARED_PEER_SUITES := $(abspath ..)/shared/peer-suites
export STUDIO_RUNNER_PEER_SUITES ?= $(if $(wildcard $(SHARED_PEER_SUITES)),$(SHARED_PEER_SUITES),$(abspath build/peer-suites))

peer-suites: $(if $(wildcard $(SHARED_PEER_SUITES)),,build/peer-suites/.fetched)

build/peer-suites/.fetched: requirements-dev.txt tests/fetch_peer_suites.py | venv
	$(PY) tests/fetch_peer_suites.py build/peer-suites
	touch $@

## The lint gate: ruff (pyflakes, import order, bugbear, pyupgrade; pyproject's [tool.ruff]).
lint: venv
	$(VENV)/bin/ruff check .

## The type gate: mypy on the library and the CLI (pyproject's [tool.mypy]).
typecheck: venv
	$(VENV)/bin/mypy

## One test folder each (what `make test` runs all of, before the bundle tests).
unit integration e2e: venv peer-suites
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests/$@
infra: venv node_modules/.installed build/wheelhouse/.downloaded
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests/infra

test: venv node_modules/.installed build/wheelhouse/.downloaded build/.browser kernels peer-suites
	$(MAKE) lint
	$(MAKE) typecheck
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests
	$(MAKE) test-bundle

## Kernels in other languages for the e2e tests (issue 18.4): bash_kernel (requirements-dev.txt) and
## IRkernel (Debian's r-cran-irkernel, installed with apt-get when root), their kernelspecs registered
## in .venv, where the stand-in's jupyter_server finds them. What is there is kept. Without apt-get
## or root, R is left out and tests/e2e/test_kernel_languages.py skips its R tests, saying so.
KERNELS := $(VENV)/share/jupyter/kernels
kernels: $(KERNELS)/bash/kernel.json $(KERNELS)/ir/kernel.json

$(KERNELS)/bash/kernel.json: $(VENV)/.installed
	$(PY) -m bash_kernel.install --sys-prefix

$(KERNELS)/ir/kernel.json: $(VENV)/.installed
	@if ! Rscript -e 'library(IRkernel)' >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "Installing IRkernel (apt-get install r-cran-irkernel, about 2 minutes)"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -q --no-install-recommends r-cran-irkernel >/dev/null || \
				{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends r-cran-irkernel >/dev/null; }; \
		fi; \
	fi; \
	if Rscript -e 'library(IRkernel)' >/dev/null 2>&1; then \
		PATH="$(abspath $(VENV))/bin:$$PATH" Rscript -e \
			'IRkernel::installspec(name = "ir", displayname = "R", user = FALSE, prefix = "$(abspath $(VENV))")'; \
	else \
		echo "make kernels: IRkernel is not installed (apt-get install r-cran-irkernel, as root); the R tests will be skipped"; \
	fi

## The Lambda-side tests under Python 3.13 with the built bundle (not lambdas/) on sys.path;
## .venv313 has only the test side (moto, jupyter_server, ipykernel, pytest…).
## The JupyterLab backend's unit tests (tests/unit/test_jupyterlab_*.py) are left out: no Lambda runs
## them, and jupyter-scheduler (with its croniter) is not in .venv313.
test-bundle: $(VENV313)/.installed $(BUNDLE)/.built
	STUDIO_RUNNER_LAMBDA_PATH=$(abspath $(BUNDLE)) $(VENV313)/bin/python -m pytest -q -n $(PYTEST_WORKERS) \
		-p tests.infra.bundle_plugin -o pythonpath="$(abspath $(BUNDLE)) ." \
		--ignore-glob='tests/unit/test_jupyterlab_*' $(BUNDLE_TESTS)

$(VENV313)/.installed: tests/infra/requirements-bundle.txt
	test -x $(VENV313)/bin/python || $(PYTHON313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/infra/requirements-bundle.txt
	touch $@

$(BUNDLE)/.built: $(VENV)/.installed build/wheelhouse/.downloaded infra/bundling.py $(LAMBDA_SOURCES)
	$(PY) -m infra.bundling bundle $(BUNDLE)
	touch $@

## Synthesize the stack into cdk.out. Wheels for the Lambda runtime are fetched first (the one
## step that needs PyPI); `cdk synth` itself then runs offline.
synth: venv node_modules/.installed build/wheelhouse/.downloaded
	npx --no-install cdk synth --no-notices --quiet

## Headless Chromium for the browser tests (the run's page offline; JupyterLab): Debian's
## chromium, driven by playwright's Python package (requirements-dev.txt; no browser download).
## apt-get runs when root, noninteractive (a fresh Debian has no tzdata, which would ask for a time
## zone with its output sent to /dev/null); otherwise the browser tests skip, saying why.
build/.browser: $(VENV)/.installed
	@if ! test -x /usr/bin/chromium; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's chromium (apt-get install chromium, about 2 minutes)"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "make build/.browser: /usr/bin/chromium is missing (apt-get install chromium, as root); the browser tests will be skipped"; \
		fi; \
	fi
	$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check \
		"$$(grep -i '^playwright==' requirements-dev.txt)"
	if test -x /usr/bin/chromium; then mkdir -p build && touch $@; fi

build/wheelhouse/.downloaded: lambdas/requirements.txt lambdas/requirements-render.txt infra/bundling.py
	$(PY) -m infra.bundling download
	touch $@

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(VENV313) node_modules cdk.out build
