"""The CellProfiler plugins folder for the app (`focus-quality cellprofiler-plugin`), as files.

It runs in CellProfiler in `test_cellprofiler_app.py` and `test_cellprofiler_gui.py`.
"""
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cellprofiler_plugin.folder import CORE_PACKAGE, ZIP_FOLDER, core_modules
from model import load_model, predict

from .conftest import ROOT


def write(target):
    proc = subprocess.run([sys.executable, "-m", "model", "cellprofiler-plugin", str(target)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_folder_holds_the_module_its_core_and_the_weights_only(tmp_path):
    (tmp_path / "someoneelsesplugin.py").write_text("")
    assert "Preferences" in write(tmp_path)
    top = sorted(p.name for p in tmp_path.iterdir())
    assert top == sorted(["measureimagefocus.py", CORE_PACKAGE, "someoneelsesplugin.py"])
    core = tmp_path / CORE_PACKAGE
    assert sorted(p.stem for p in core.glob("*.py")) == core_modules()
    assert {"predictor", "numpy_network", "inference", "overlay"} <= set(core_modules())
    assert "training" not in core_modules() and "batch" not in core_modules()
    assert sorted(p.name for p in (core / "saved_model").iterdir()) == ["SHA256SUMS", "numpy_weights.npz"]
    module = (tmp_path / "measureimagefocus.py").read_text()
    assert "from model." not in module and f"from {CORE_PACKAGE}.inference import predict" in module


def test_the_folder_is_python_38_code(tmp_path):
    """The CellProfiler 4.2 app's Python is 3.8."""
    write(tmp_path)
    proc = subprocess.run([str(Path(sys.executable).with_name("vermin")), "--no-tips", "--violations", "-t=3.8-",
                           "--eval-annotations", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_zip_unpacks_to_the_same_folder(tmp_path):
    write(tmp_path / "folder")
    write(tmp_path / "plugin.zip")
    with zipfile.ZipFile(tmp_path / "plugin.zip") as archive:
        archive.extractall(tmp_path / "unzipped")
        assert {name.split("/")[0] for name in archive.namelist()} == {ZIP_FOLDER}
    unzipped = tmp_path / "unzipped" / ZIP_FOLDER
    files = sorted(p.relative_to(tmp_path / "folder") for p in (tmp_path / "folder").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(unzipped) for p in unzipped.rglob("*") if p.is_file())
    for name in files:
        assert (unzipped / name).read_bytes() == (tmp_path / "folder" / name).read_bytes()


def test_the_folder_runs_with_an_older_numpy_and_pillow(tmp_path, in_focus_image):
    """The app bundles its own numpy and Pillow: the oldest that install on this Python (numpy 1.23, Pillow 9.5,
    whose default font has no sizes), with nothing else, give the same result and an annotated picture."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "numpy==1.23.5", "pillow==9.5.0"],
                   check=True, capture_output=True, timeout=600)
    write(tmp_path / "plugins")
    np.save(tmp_path / "image.npy", in_focus_image)
    code = ("import sys, numpy, PIL; from measureimagefocus_core import predict; "
            "from measureimagefocus_core.overlay import annotate; "
            f"im = numpy.load({str(tmp_path / 'image.npy')!r}); r = predict(im); a = annotate(im, r); "
            "print(numpy.__version__, PIL.__version__, r.predicted_level, r.expected_level, a.shape[1], "
            "'tensorflow' in sys.modules)")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          cwd=tmp_path / "plugins", timeout=300)
    assert proc.returncode == 0, proc.stderr
    numpy_version, pillow_version, level, expected, width, tensorflow = proc.stdout.split()
    assert (numpy_version, pillow_version, tensorflow) == ("1.23.5", "9.5.0", "False")
    result = predict(in_focus_image, model=load_model(backend="numpy"))
    assert int(level) == result.predicted_level and float(expected) == pytest.approx(result.expected_level, abs=1e-6)
    assert int(width) == in_focus_image.shape[1]
