# The two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,plot]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m ruff check stratlang solvers tests examples $(wildcard benchmarks)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

# the long fuzz profile (tests/fuzz_campaign.py): INPUTS generated and mutated specs
INPUTS ?= 100000
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz_campaign --inputs $(INPUTS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis fuzz-failures
