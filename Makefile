# The two set-up commands of the README: `make demo` and `make test`.
# Debian's Python: its wxPython (python3-wxgtk4.0) reaches the venvs through --system-site-packages,
# which the CellProfiler GUIs need (wxPython has no Linux wheel on PyPI).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
# CellProfiler 4.2.8.1 needs other versions of its dependencies, so it gets its own environment.
VENV_CP4 ?= .venv-cp4
BIN_CP4 := $(VENV_CP4)/bin
VENV_APP ?= .venv-cp4-app
VENV_APP5 ?= .venv-cp5-app
CP5_APP := cellprofiler-nightly==5.0.0.dev784

.PHONY: demo test test-gui benchmark install install-test install-cp4 install-cp4-app install-cp5-app cellprofiler-plugin

$(BIN)/python:
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt ".[cpu]"

# Everything the tests drive for real: CellProfiler 5, ImageJ1 through scyjava, Dask, the format readers.
install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ".[cpu,test,cellprofiler,fiji,dask,formats]"
	$(BIN)/pip install --quiet --no-deps $(CP5_APP)

# CellProfiler 4.2.8.1 on Python 3.11 in venv $(1): --no-deps plus overridden pins, javabridge built against
# numpy 1.26 (needs a JDK), then CellProfiler's own dependencies.
define install_cellprofiler4
	test -x $(1)/bin/python || $(PYTHON) -m venv --system-site-packages $(1)
	$(1)/bin/pip install --quiet --upgrade pip
	$(1)/bin/pip install --quiet -c constraints-cp4.txt numpy "cython<3" setuptools wheel
	JAVA_HOME=$${JAVA_HOME:-$$(dirname $$(dirname $$(readlink -f $$(command -v javac))))} \
	  $(1)/bin/pip install --quiet -c constraints-cp4.txt --no-build-isolation python-javabridge
	$(1)/bin/pip install --quiet --no-deps cellprofiler-core==4.2.8.1 cellprofiler==4.2.8.1
	$(1)/bin/pip install --quiet -c constraints-cp4.txt -r requirements-cp4.txt
endef

install-cp4:
	$(call install_cellprofiler4,$(VENV_CP4))
	$(BIN_CP4)/pip install --quiet -c constraints-cp4.txt -e ".[cpu,test]"

# Shaped like the CellProfiler app: CellProfiler 4.2.8.1 and its own dependencies only (no TensorFlow, not this
# package); the tests start CellProfiler there with the folder of `focus-quality cellprofiler-plugin`.
install-cp4-app:
	$(call install_cellprofiler4,$(VENV_APP))

# The same for CellProfiler 5: its dependencies as the [cellprofiler] extra names them, then this package removed.
install-cp5-app:
	test -x $(VENV_APP5)/bin/python || $(PYTHON) -m venv --system-site-packages $(VENV_APP5)
	$(VENV_APP5)/bin/pip install --quiet --upgrade pip
	$(VENV_APP5)/bin/pip install --quiet -c constraints.txt ".[cellprofiler]"
	$(VENV_APP5)/bin/pip uninstall --quiet --yes microscope-focus-quality
	$(VENV_APP5)/bin/pip install --quiet --no-deps $(CP5_APP)

# Assess the bundled sample images: annotated PNGs, results.csv, patches.csv and plots in results/.
demo: install
	$(BIN)/focus-quality predict samples --output results; test $$? -le 1
	$(BIN)/focus-quality summarize results

# The CellProfiler app's plugin: MeasureImageFocus with its core and NumPy weights, as the zip users download.
cellprofiler-plugin: install
	$(BIN)/focus-quality cellprofiler-plugin dist/MeasureImageFocus-cellprofiler-plugin.zip

# Install everything and run the whole test suite (CellProfiler 4.2.8.1 and 5 shaped like the app included), then
# the CellProfiler tests again on CellProfiler 4.2.8.1, then CellProfiler's real window on all four (test-gui).
test: install-test install-cp4 install-cp4-app install-cp5-app
	FOCUS_QUALITY_APP_PYTHON=$(abspath $(VENV_APP))/bin/python $(BIN)/python -m pytest -p no:cacheprovider --ignore=$(GUI_TESTS)
	FOCUS_QUALITY_APP_PYTHON=$(abspath $(VENV_APP5))/bin/python $(BIN)/python -m pytest -p no:cacheprovider \
	  tests/test_cellprofiler_app.py
	$(BIN_CP4)/python -m pytest -p no:cacheprovider tests/test_cellprofiler_plugin.py
	$(MAKE) test-gui

# CellProfiler 5 and 4.2.8.1 in their windows, under Xvfb with GLX (needs python3-wxgtk4.0, xvfb, xdotool,
# x11-utils, imagemagick); screenshots go to test-artifacts/.
GUI_TESTS := tests/test_cellprofiler_gui.py
test-gui: install-test install-cp4 install-cp4-app install-cp5-app
	FOCUS_QUALITY_ARTIFACTS=test-artifacts $(BIN)/python -m pytest -p no:cacheprovider $(GUI_TESTS)
	FOCUS_QUALITY_ARTIFACTS=test-artifacts $(BIN_CP4)/python -m pytest -p no:cacheprovider $(GUI_TESTS)
	for app in $(abspath $(VENV_APP)) $(abspath $(VENV_APP5)); do \
	  FOCUS_QUALITY_ARTIFACTS=test-artifacts FOCUS_QUALITY_APP_PYTHON=$$app/bin/python \
	    $(BIN)/python -m pytest -p no:cacheprovider $(GUI_TESTS) || exit 1; done

# Speed and scale benchmarks (about 5 minutes); the reports go to benchmarks/RESULTS.md and RESULTS-cellprofiler.md.
# Then the network in NumPy and TensorFlow against PowerLogLogSlope as CellProfiler computes it (centrosome, in the
# CellProfiler 4.2.8.1 environment), and MeasureImageFocus against MeasureImageQuality in one pipeline of the
# app-like CellProfiler, with OpenBLAS choosing its kernels as on users' machines (some machines here pin an older
# kernel through OPENBLAS_CORETYPE).
benchmark: install-test install-cp4 install-cp4-app
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.suite --images 30 --stream-images 2000 \
	  --output benchmarks/RESULTS.md
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN_CP4)/python -m benchmarks.against_cellprofiler \
	  > benchmarks/RESULTS-cellprofiler.md
	echo >> benchmarks/RESULTS-cellprofiler.md
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.inside_cellprofiler \
	  --cellprofiler-python $(abspath $(VENV_APP))/bin/python >> benchmarks/RESULTS-cellprofiler.md
	$(BIN)/python -m benchmarks.report_scale >> benchmarks/RESULTS.md
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.fiji_launcher >> benchmarks/RESULTS.md
