# One way to run each thing. Every target uses the project venv made by `make install`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := $(BIN)/python deploy/local/stack.py
STAMP := $(VENV)/.installed
E2E_STAMP := $(VENV)/.installed-e2e

.PHONY: install install-e2e stack-up stack-down stack-logs stack-status run test test-unit lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11+"; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); lineage-stream needs 3.11+: make PYTHON=python3.11 ..."; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	@touch $(STAMP)

# The Spark end-to-end tests also need pyspark, and PostgreSQL for their JDBC workload.
install-e2e: $(E2E_STAMP)

$(E2E_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --editable '.[dev,e2e]'
	sh deploy/local/system-packages.sh
	@touch $(E2E_STAMP)

stack-up: install
	$(STACK) up

stack-down: install
	$(STACK) down

stack-logs: install
	$(STACK) logs

stack-status: install
	$(STACK) status

# Runs the service on the local stack with the bundled Spark demo events.
run: install
	$(BIN)/python deploy/local/run_demo.py

lint: install
	$(BIN)/ruff format --check lineage_stream tests deploy bench
	$(BIN)/ruff check lineage_stream tests deploy bench

typecheck: install
	$(BIN)/mypy

test-unit: install
	$(BIN)/pytest -m unit -q

# The README's test command: everything from a bare machine to a green run.
test: install-e2e lint typecheck
	$(STACK) up
	$(BIN)/pytest -q --durations=15; status=$$?; $(STACK) down; exit $$status

# Benchmarks (docs/performance.md): never part of the test run; results go to bench/results/.
bench: install
	$(BIN)/pip install --quiet --editable '.[bench]'
	$(STACK) up
	$(BIN)/python -m bench.run; status=$$?; $(STACK) down; exit $$status

clean:
	rm -rf $(VENV) .stack .lineage-stream .bench .pytest_cache .mypy_cache .ruff_cache
