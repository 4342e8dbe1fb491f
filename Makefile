# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt ".[cpu]"

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ".[cpu,test]"

# Assess the bundled sample images: annotated PNGs, results.csv, patches.csv and plots in results/.
demo: install
	$(BIN)/focus-quality predict samples --output results; test $$? -le 1
	$(BIN)/focus-quality summarize results

# Install everything (including system packages) and run the whole test suite.
test: install-test
	$(BIN)/python -m pytest -p no:cacheprovider
