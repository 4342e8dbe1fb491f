"""MeasureImageFocus in an environment shaped like the CellProfiler app, from the folder users unzip.

Headless here; CellProfiler's window in this environment is `test_cellprofiler_gui.py` with
FOCUS_QUALITY_APP_PYTHON set (`make test-gui`).
"""
import csv
import os
import shutil
import subprocess
import sys

import pytest
import tifffile

from cellprofiler_plugin.folder import CORE_PACKAGE

from .cellprofiler_app import APP_PYTHON, app_cellprofiler_major, run_app_python
from .conftest import IN_FOCUS, OUT_OF_FOCUS, ROOT

PIPELINE = ROOT / "examples" / "measure_focus.cppipe"
#: A plugin the user already has in the folder.
ANOTHER_PLUGIN = """from cellprofiler_core.module import Module
class SomeoneElsesPlugin(Module):
    module_name, category, variable_revision_number = "SomeoneElsesPlugin", "Other", 1
    def create_settings(self): pass
    def settings(self): return []
    def run(self, workspace): pass
"""

if APP_PYTHON is None:
    if os.environ.get("FOCUS_QUALITY_REQUIRE_HOSTS") == "1":
        pytest.fail("FOCUS_QUALITY_APP_PYTHON must name the app-like environment's Python (make install-cp4-app)",
                    pytrace=False)
    pytest.skip("no app-like CellProfiler environment (FOCUS_QUALITY_APP_PYTHON)", allow_module_level=True)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """The plugins folder as `focus-quality cellprofiler-plugin` writes it, beside another user's plugin."""
    folder = tmp_path_factory.mktemp("app") / "plugins"
    folder.mkdir()
    (folder / "someoneelsesplugin.py").write_text(ANOTHER_PLUGIN)
    proc = subprocess.run([sys.executable, "-m", "model", "cellprofiler-plugin", str(folder)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for path in (IN_FOCUS, OUT_OF_FOCUS):
        shutil.copy(path, folder)
    return folder


def test_the_environment_is_shaped_like_the_app(tmp_path):
    """Asserted first: CellProfiler is there, TensorFlow and this package are not."""
    proc = run_app_python("import cellprofiler_core, cellprofiler, numpy, PIL; print(numpy.__version__)", tmp_path)
    assert proc.returncode == 0, proc.stderr
    for module in ("tensorflow", "model", "cellprofiler_plugin"):
        proc = run_app_python(f"import {module}", tmp_path)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, f"{module} importable in the app env"


def cellprofiler(plugins, *args, cwd):
    command = [APP_PYTHON, "-m", "cellprofiler", "-c", "-r", "--plugins-directory", str(plugins), *map(str, args)]
    if app_cellprofiler_major() >= 5:
        command += ["-e", "imageio_reader"]  # no Bio-Formats download, as offline users run it
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=900)


def test_headless_run_gives_the_scores_of_focus_quality_predict(plugins, images, tmp_path):
    out = tmp_path / "cellprofiler"
    proc = cellprofiler(plugins, "-p", PIPELINE, "-i", images, "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert CORE_PACKAGE not in proc.stderr, proc.stderr[-3000:]  # no traceback through the plugin
    with open(out / "Focus_Image.csv", newline="") as fd:
        rows = {row["FileName_DNA"]: row for row in csv.DictReader(fd)}
    predicted = tmp_path / "predict"
    subprocess.run([sys.executable, "-m", "model", "predict", str(images), "-o", str(predicted), "--no-png",
                    "--no-progress"], check=True, capture_output=True, timeout=600, cwd=ROOT)
    with open(predicted / "results.csv", newline="") as fd:
        expected = {os.path.basename(row["path"]): row for row in csv.DictReader(fd)}
    assert sorted(rows) == sorted(expected) == sorted([IN_FOCUS.name, OUT_OF_FOCUS.name])
    for name, row in rows.items():
        cli = expected[name]
        assert float(row["ImageFocus_Score_DNA"]) == float(cli["predicted_level"])
        assert float(row["ImageFocus_EmptyPatches_DNA"]) == float(cli["empty_patches"])
        assert float(row["ImageFocus_InFocus_DNA"]) == float(cli["in_focus"] == "True")
        assert float(row["ImageFocus_ExpectedLevel_DNA"]) == pytest.approx(float(cli["expected_level"]), abs=0.01)
        assert float(row["ImageFocus_Certainty_DNA"]) == pytest.approx(float(cli["aggregate_certainty"]), abs=0.01)
    assert (out / f"{IN_FOCUS.stem}_focus.png").exists()


def test_damaged_weights_stop_the_run_with_the_reason(plugins, images, tmp_path):
    damaged = shutil.copytree(plugins, tmp_path / "plugins")
    weights = damaged / CORE_PACKAGE / "saved_model" / "numpy_weights.npz"
    weights.write_bytes(weights.read_bytes()[:4096])
    proc = cellprofiler(damaged, "-p", PIPELINE, "-i", images, "-o", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode != 0
    assert "MeasureImageFocus cannot load its model" in proc.stderr and "damaged" in proc.stderr, proc.stderr[-3000:]
    assert CORE_PACKAGE not in proc.stderr.replace(str(weights), ""), proc.stderr[-3000:]
    assert not (tmp_path / "out" / "Focus_Image.csv").exists()

