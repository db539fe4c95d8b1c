# loadgen developer commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install deps demo test faults deploy-tests lint bench bench-quick clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# httpbin 0.10.4 pins greenlet<3 on Python < 3.12 although it never imports greenlet; gevent>=24.2 needs
	@# greenlet>=3: its real dependencies are in the test extra (pyproject.toml), so install it without them
	$(PY) -m pip install -q --no-deps 'httpbin==0.10.4'
	touch $@

install: $(VENV)/.installed  ## create .venv and install loadgen with test extras

demo: install  ## built-in target + master + two workers on 127.0.0.1, ~15 s, then the summary
	$(PY) bench/demo.py

deps: install  ## what the tests need beyond .venv: system packages (apt-get, as root) and the deploy tools
	bash .ci/system-deps.sh
	bash deploy/ci-setup.sh >/dev/null

test: deps lint  ## lint, then the whole suite with nothing skipped (what CI runs): two test files at a time
	LOADGEN_NO_SKIPS=1 $(PY) tests/parallel.py $(PYTEST_ARGS)

faults: deps  ## the fleet under real faults: namespaces, cuts, loss, latency, SIGSTOP (root; ~8 min; CI runs it)
	LOADGEN_FAULTS=1 LOADGEN_NO_SKIPS=1 $(BIN)/pytest -q -p no:cacheprovider tests/faults $(PYTEST_ARGS)

deploy-tests: deps  ## the deploy suite: Terraform, the Ansible roles applied for real, the Kubernetes manifests (~3 min; CI runs it)
	LOADGEN_NO_SKIPS=1 $(BIN)/pytest -q -p no:cacheprovider tests/deploy $(PYTEST_ARGS)

lint: install  ## ruff, the import layers (import-linter) and the types (mypy)
	$(BIN)/ruff check loadgen tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

bench: install  ## throughput, memory and accuracy against Locust (installed in its own venv)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
