# The two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-floors fuzz fuzz-auto clean

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

# the tests that reach pandas, NumPy and SciPy most (fits of every loss through the CLI,
# save and load, Dask) against the lowest versions pyproject.toml allows, in .venv-floors
FLOORS := $(shell sed -n 's/^ *"\(numpy\|scipy\|pandas\)>=\([0-9.]*\)".*/\1==\2/p' pyproject.toml)
test-floors:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x .venv-floors/bin/python || $(PYTHON) -m venv .venv-floors
	.venv-floors/bin/python -m pip install --quiet $(FLOORS) -e ".[test]"
	.venv-floors/bin/python -m pytest -q tests/test_cli_losses.py tests/test_saved_models.py \
		tests/test_cli.py tests/test_api.py tests/test_modeling.py tests/test_dask.py

# the long fuzz profile (tests/fuzz_campaign.py): INPUTS generated and mutated specs
INPUTS ?= 100000
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz_campaign --inputs $(INPUTS)

# the long profile of the auto campaign (tests/fuzz_auto.py): CASES models fitted, weights
# chosen, standard errors and intervals checked through the CLI and the API
CASES ?= 1000
fuzz-auto: $(STAMP)
	$(BIN)/python -m tests.fuzz_auto --cases $(CASES)

clean:
	rm -rf $(VENV) .venv-floors build dist *.egg-info .pytest_cache .ruff_cache .hypothesis fuzz-failures
