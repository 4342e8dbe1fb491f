"""MeasureImageFocus in CellProfiler's real window, on a display with GLX (as Linux desktops have).

`cellprofiler_gui_session.py` runs CellProfiler's GUI under Xvfb and works it as
a user would: test mode, Step, the module's window, Analyze Images. This test
checks what the window showed against the core and against `focus-quality
predict`, and keeps the screenshots (in $FOCUS_QUALITY_ARTIFACTS, default a
temporary folder) for a person to look at. `make test-gui` runs it on
CellProfiler 5 and on CellProfiler 4.2.8.1.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage

from cellprofiler_plugin.folder import CORE_PACKAGE
from model import load_model, predict
from model.overlay import annotate

from . import virtual_display
from .cellprofiler_app import APP_PYTHON, app_cellprofiler_major
from .conftest import IN_FOCUS, OUT_OF_FOCUS, ROOT, require_host

if APP_PYTHON is None:
    require_host("cellprofiler", "CellProfiler's GUI (cellprofiler)")
require_host("wx", "wxPython (Debian's python3-wxgtk4.0, in a venv made with --system-site-packages)")

from cellprofiler_plugin._versions import cellprofiler_major as _this_cellprofiler_major  # noqa: E402

PIPELINE = ROOT / "examples" / "measure_focus.cppipe"
SESSION = Path(__file__).with_name("cellprofiler_gui_session.py")
#: Where CellProfiler runs: this venv with the repository's plugin folder, or (FOCUS_QUALITY_APP_PYTHON)
#: an environment shaped like the CellProfiler app with the folder `focus-quality cellprofiler-plugin` writes.
CELLPROFILER_PYTHON = APP_PYTHON or sys.executable


def cellprofiler_major():
    return app_cellprofiler_major() if APP_PYTHON else _this_cellprofiler_major()


def pipeline_for_this_version(folder, plugins):
    """The example pipeline as this CellProfiler saves it (CellProfiler 5 asks before opening a 4.x one)."""
    if cellprofiler_major() < 5:
        return PIPELINE
    code = ("import sys, cellprofiler_core.preferences as p; p.set_headless();"
            f"p.set_plugin_directory({str(plugins)!r}, globally=False);"
            "import cellprofiler_core.modules; from cellprofiler_core.pipeline import Pipeline;"
            f"pl = Pipeline(); pl.load({str(PIPELINE)!r});"
            f"pl.dump(open({str(folder / 'pipeline.cppipe')!r}, 'w'), save_image_plane_details=False)")
    subprocess.run([CELLPROFILER_PYTHON, "-c", code], check=True, capture_output=True, timeout=300, cwd=folder)
    return folder / "pipeline.cppipe"


def run_session(base, damaged_weights=False, tiny_image=False):
    """One GUI session of CellProfiler; its report, output folder and screenshots folder.

    ``damaged_weights`` (app-like environments, whose plugins folder the test writes): the
    weights file is cut short, and the session only starts test mode and reads the error box.
    ``tiny_image``: the only image is smaller than a patch, and the session only reads the
    module window of the first Step.
    """
    if not virtual_display.available():
        message = "Xvfb, xdotool, xdpyinfo and imagemagick are needed (apt-get install xvfb xdotool x11-utils imagemagick)"
        if os.environ.get("FOCUS_QUALITY_REQUIRE_HOSTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    images, output, home = base / "images", base / "output", base / "home"
    for folder in (images, output, home):
        folder.mkdir()
    if tiny_image:
        tifffile.imwrite(images / "tiny.tif", tifffile.imread(IN_FOCUS)[:60, :50])
    else:
        for sample in (IN_FOCUS, OUT_OF_FOCUS):
            shutil.copy(sample, images)
    artifacts = (Path(os.environ.get("FOCUS_QUALITY_ARTIFACTS", base / "artifacts")).resolve()
                 / f"cellprofiler{cellprofiler_major()}{'-app' if APP_PYTHON else ''}"
                 / ("damaged_weights" if damaged_weights else "tiny_image" if tiny_image else ""))
    artifacts.mkdir(parents=True, exist_ok=True)
    plugins = ROOT / "cellprofiler_plugin"
    if APP_PYTHON:
        plugins = base / "plugins"
        subprocess.run([sys.executable, "-m", "model", "cellprofiler-plugin", str(plugins)], check=True,
                       capture_output=True, timeout=300, cwd=ROOT)
    if damaged_weights:
        weights = plugins / CORE_PACKAGE / "saved_model" / "numpy_weights.npz"
        weights.write_bytes(weights.read_bytes()[:4096])
    command = [CELLPROFILER_PYTHON, str(SESSION), "--pipeline", str(pipeline_for_this_version(base, plugins)),
               "--plugins", str(plugins), "--output", str(output), "--screenshots", str(artifacts),
               "--images", *map(str, sorted(images.iterdir()))]
    if cellprofiler_major() >= 5:
        command.append("--cellprofiler-args=-e imageio_reader")  # no Bio-Formats download, as offline users do
    if damaged_weights:
        command.append("--expect-model-error")
    if tiny_image:
        command.append("--expect-not-assessed")
    with virtual_display.virtual_display() as env:
        glx = virtual_display.has_glx(env)
        proc = subprocess.run(command, env={**env, "HOME": str(home)}, capture_output=True, text=True,
                              timeout=1200, cwd=base)
    (artifacts / "session.log").write_text(proc.stderr)
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    (artifacts / "report.json").write_text(json.dumps(report, indent=1))
    return {"glx": glx, "returncode": proc.returncode, "report": report, "output": output,
            "artifacts": artifacts, "stderr": proc.stderr}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return run_session(tmp_path_factory.mktemp("gui"))


def test_the_window_survives_the_first_image_with_glx(session):
    report = session["report"]
    assert session["glx"], "the display must offer GLX: that is where TensorFlow crashed CellProfiler"
    assert session["returncode"] == 0, (session["returncode"], session["stderr"][-3000:])
    assert "driver_error" not in report and "stuck" not in report, report
    assert report["alive_after_step"] and report["mesa_llvm_in_gui_process"]
    assert report["tensorflow_in_gui_process"] is False
    assert report["backends"] == ["numpy"], "the window's process runs the network in NumPy"
    assert report["dialogs"] == [] and report["message_boxes"] == []


def expected_result(path, backend="numpy"):
    """What the window computes: the core, with the network in NumPy (``backend=None``: as headless runs choose)."""
    return predict(tifffile.imread(path), model=load_model(backend=backend))


def test_the_module_window_shows_the_numbers_of_focus_quality_predict(session, tmp_path):
    out = tmp_path / "predict"
    subprocess.run([sys.executable, "-m", "model", "predict", str(IN_FOCUS), "-o", str(out), "--no-png",
                    "--no-progress"], check=True, capture_output=True, timeout=600, cwd=ROOT)
    with open(out / "results.csv", newline="") as fd:
        row = next(csv.DictReader(fd))
    table = session["report"]["figure_table"]
    assert float(table["Score"]) == float(row["predicted_level"])
    assert float(table["Certainty"]) == pytest.approx(float(row["aggregate_certainty"]), rel=1e-3)
    assert float(table["ExpectedLevel"]) == pytest.approx(float(row["expected_level"]), rel=1e-3)
    assert float(table["EmptyPatches"]) == float(row["empty_patches"])


def test_the_module_window_shows_the_annotated_image(session):
    shown = np.load(session["artifacts"] / "figure_image.npy")
    expected = annotate(tifffile.imread(IN_FOCUS), expected_result(IN_FOCUS)) / 255.0
    assert shown.shape == expected.shape
    np.testing.assert_allclose(shown, expected, atol=1e-6)
    # What reached the screen: the image area of the window's screenshot looks like the annotated
    # image (a 0-255 image handed to CellProfiler as 0-1 shows white and saturated instead).
    x, y, w, h = session["report"]["figure_image_on_screen"]
    left, top = session["report"]["display_window_rect"][:2]
    screenshot = Image.open(session["artifacts"] / "display_window.png").convert("RGB")
    on_screen = np.asarray(screenshot.crop((x - left, y - top, x - left + w, y - top + h)), dtype=float) / 255
    resized = np.asarray(Image.fromarray((expected * 255).astype(np.uint8)).resize((w, h)), dtype=float) / 255
    assert on_screen.mean() < 0.2, "the image on screen is bright: saturated?"
    # Compared 2 px smoothed: the drawn image can sit one pixel off its reported box.
    similarity = np.corrcoef(ndimage.gaussian_filter(on_screen.mean(axis=2), 2).ravel(),
                             ndimage.gaussian_filter(resized.mean(axis=2), 2).ravel())[0, 1]
    assert similarity > 0.85  # ~0.95 when right; a saturated display gives ~0


def test_analyze_images_exports_the_values_of_the_core(session):
    with open(session["output"] / "Focus_Image.csv", newline="") as fd:
        rows = {row["FileName_DNA"]: row for row in csv.DictReader(fd)}
    assert sorted(rows) == sorted([IN_FOCUS.name, OUT_OF_FOCUS.name])
    for path in (IN_FOCUS, OUT_OF_FOCUS):
        # Analyze Images runs in CellProfiler's headless analysis workers: TensorFlow where this environment has it.
        expected = expected_result(path, backend="numpy" if APP_PYTHON else None).summary()
        row = rows[path.name]
        assert float(row["ImageFocus_Score_DNA"]) == expected["predicted_level"]
        assert float(row["ImageFocus_Certainty_DNA"]) == pytest.approx(expected["aggregate_certainty"], rel=1e-5)
        assert float(row["ImageFocus_EmptyPatches_DNA"]) == expected["empty_patches"]
    assert (session["output"] / f"{IN_FOCUS.stem}_focus.png").exists()


def test_screenshots_are_kept(session):
    for name in ("settings_panel", "display_window", "after_analysis"):
        path = session["artifacts"] / f"{name}.png"
        assert path.exists() and Image.open(path).size[0] > 400


def test_the_module_window_says_why_an_image_was_not_assessed(tmp_path):
    """The app hides its log: the reason must be in the window."""
    tiny = run_session(tmp_path, tiny_image=True)
    assert tiny["returncode"] == 0, (tiny["returncode"], tiny["stderr"][-3000:])
    assert "driver_error" not in tiny["report"], tiny["report"]
    rows = tiny["report"]["figure_rows"]
    assert rows[0] == ["Score", "not assessed"] and rows[1][0] == "Why", rows
    assert " ".join(value for _, value in rows[1:]) == "DNA is 50 px wide and 60 px high, smaller than one 84x84 patch"
    assert (tiny["artifacts"] / "not_assessed.png").exists()


@pytest.mark.skipif(APP_PYTHON is None, reason="the plugins folder of an app-like environment is the test's own")
def test_damaged_weights_give_an_error_box_with_the_reason(tmp_path):
    damaged = run_session(tmp_path, damaged_weights=True)
    assert damaged["returncode"] == 0, (damaged["returncode"], damaged["stderr"][-3000:])
    assert "driver_error" not in damaged["report"], damaged["report"]
    boxes = damaged["report"]["message_boxes"]
    assert len(boxes) == 1, boxes
    assert "MeasureImageFocus cannot load its model" in boxes[0]["text"] and "damaged" in boxes[0]["text"], boxes
    assert (damaged["artifacts"] / "model_error.png").exists()
