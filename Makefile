# The two set-up commands of the README: `make demo` and `make test`.
# Debian's Python: its wxPython (python3-wxgtk4.0) reaches the venvs through --system-site-packages,
# which the CellProfiler GUIs need (wxPython has no Linux wheel on PyPI).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
# CellProfiler 4.2.8.1 needs other versions of its dependencies, so it gets its own environment.
VENV_CP4 ?= .venv-cp4
BIN_CP4 := $(VENV_CP4)/bin
CP5_APP := cellprofiler-nightly==5.0.0.dev784

.PHONY: demo test test-gui benchmark install install-test install-cp4

$(BIN)/python:
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt ".[cpu]"

# Everything the tests drive for real: CellProfiler 5, ImageJ1 through scyjava, Dask, the format readers.
install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ".[cpu,test,cellprofiler,fiji,dask,formats]"
	$(BIN)/pip install --quiet --no-deps $(CP5_APP)

# CellProfiler 4.2.8.1 on Python 3.11: --no-deps plus overridden pins, javabridge built against numpy 1.26 (needs a JDK).
install-cp4:
	test -x $(BIN_CP4)/python || $(PYTHON) -m venv --system-site-packages $(VENV_CP4)
	$(BIN_CP4)/pip install --quiet --upgrade pip
	$(BIN_CP4)/pip install --quiet -c constraints-cp4.txt numpy "cython<3" setuptools wheel
	JAVA_HOME=$${JAVA_HOME:-$$(dirname $$(dirname $$(readlink -f $$(command -v javac))))} \
	  $(BIN_CP4)/pip install --quiet -c constraints-cp4.txt --no-build-isolation python-javabridge
	$(BIN_CP4)/pip install --quiet --no-deps cellprofiler-core==4.2.8.1 cellprofiler==4.2.8.1
	$(BIN_CP4)/pip install --quiet -c constraints-cp4.txt -r requirements-cp4.txt -e ".[cpu,test]"

# Assess the bundled sample images: annotated PNGs, results.csv, patches.csv and plots in results/.
demo: install
	$(BIN)/focus-quality predict samples --output results; test $$? -le 1
	$(BIN)/focus-quality summarize results

# Install everything and run the whole test suite, then the CellProfiler tests again on CellProfiler 4.2.8.1,
# then CellProfiler's real window on both (test-gui).
test: install-test install-cp4
	$(BIN)/python -m pytest -p no:cacheprovider --ignore=$(GUI_TESTS)
	$(BIN_CP4)/python -m pytest -p no:cacheprovider tests/test_cellprofiler_plugin.py
	$(MAKE) test-gui

# CellProfiler 5 and 4.2.8.1 in their windows, under Xvfb with GLX (needs python3-wxgtk4.0, xvfb, xdotool,
# x11-utils, imagemagick); screenshots go to test-artifacts/.
GUI_TESTS := tests/test_cellprofiler_gui.py
test-gui: install-test install-cp4
	FOCUS_QUALITY_ARTIFACTS=test-artifacts $(BIN)/python -m pytest -p no:cacheprovider $(GUI_TESTS)
	FOCUS_QUALITY_ARTIFACTS=test-artifacts $(BIN_CP4)/python -m pytest -p no:cacheprovider $(GUI_TESTS)

# Speed and scale benchmarks (about 4 minutes); the report goes to benchmarks/RESULTS.md.
benchmark: install-test
	$(BIN)/python -m benchmarks.suite --images 30 --stream-images 2000 --output benchmarks/RESULTS.md
