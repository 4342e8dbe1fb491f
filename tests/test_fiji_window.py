"""The menu entry in ImageJ's real window under Xvfb: the dialog, the table, and what each slice shows on screen."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from model import predict
from model.constants import PATCH_SIZE
from model.overlay import level_color_8bit

from . import virtual_display
from .conftest import IN_FOCUS, ROOT, require_host
from .test_fiji_stacks import LEVELS, SHARP_SLICE, focal_stack

require_host("jpype", "JPype (the fiji extra)")
SESSION = Path(__file__).with_name("fiji_gui_session.py")


def run_session(image, tmp_path):
    if not virtual_display.available():
        message = "Xvfb, xdotool, xdpyinfo and imagemagick are needed (apt-get install xvfb xdotool x11-utils imagemagick)"
        if os.environ.get("FOCUS_QUALITY_REQUIRE_HOSTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    artifacts = (Path(os.environ.get("FOCUS_QUALITY_ARTIFACTS", tmp_path / "artifacts")).resolve() / "imagej"
                 / Path(image).stem)
    artifacts.mkdir(parents=True, exist_ok=True)
    with virtual_display.virtual_display() as env:  # ImageJ's window needs its own process: one JVM each
        proc = subprocess.run([sys.executable, str(SESSION), str(image), str(artifacts)], env=env,
                              capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), artifacts


@pytest.fixture(scope="module")
def stack(tmp_path_factory, in_focus_image):
    folder = tmp_path_factory.mktemp("stack")
    planes = focal_stack(in_focus_image)
    tifffile.imwrite(folder / "focal_series.tif", planes, imagej=True, metadata={"axes": "ZYX"})
    return folder / "focal_series.tif", planes


def test_menu_dialog_table_and_best_plane_on_a_stack(stack, tmp_path):
    path, planes = stack
    report, artifacts = run_session(path, tmp_path)
    assert report["menu"] == ["Plugins", "Microscope Image Focus Quality"]
    expected = [predict(plane) for plane in planes]
    assert report["table_rows"] == sum(r.patch_count + 1 for r in expected)
    assert [r["slice"] for r in report["whole_image_rows"]] == [1, 2, 3]
    assert [r["best"] for r in report["whole_image_rows"]] == [0, 1, 0]
    assert report["slice_after_run"] == SHARP_SLICE  # "go to the best plane" was ticked in the dialog
    for name in ("dialog", "table"):
        assert Image.open(artifacts / f"{name}.png").size[0] > 200


def test_each_slice_shows_its_own_patches_on_screen(stack, tmp_path):
    path, planes = stack
    report, _ = run_session(path, tmp_path)
    expected = [predict(plane) for plane in planes]
    patches = [r for r in report["rois"] if r["name"].startswith("patch ")]
    assert {r["position"] for r in report["rois"]} == {1, 2, 3}
    for shown in report["slices"]:
        n = shown["slice"]
        geometry = shown["canvas"]
        screen = np.asarray(Image.open(shown["screenshot"]).convert("RGB"))
        result = expected[n - 1]
        mine = [r for r in patches if r["position"] == n]
        assert [r["colour"] for r in mine] == [list(level_color_8bit(level, cert)) for level, cert in
                                               zip(result.patch_levels, result.patch_certainties)]
        seen = []
        for roi, level, cert in zip(mine, result.patch_levels, result.patch_certainties):
            x, y, _, _ = roi["box"]
            sx = geometry["x"] + int((x + PATCH_SIZE // 2 - geometry["source_x"]) * geometry["zoom"])
            sy = geometry["y"] + int((y - geometry["source_y"]) * geometry["zoom"])
            seen.append(tuple(screen[sy, sx]) == level_color_8bit(level, cert))
        assert np.mean(seen) > 0.9, f"slice {n}: the screen shows other colours than its own patches'"
    assert len(report["slices"]) == len(LEVELS)


def test_menu_on_a_single_image(tmp_path):
    report, _ = run_session(IN_FOCUS, tmp_path)
    expected = predict(tifffile.imread(IN_FOCUS))
    assert report["table_rows"] == expected.patch_count + 1
    assert [r["best"] for r in report["whole_image_rows"]] != [1]  # no best plane among one
    assert {r["position"] for r in report["rois"]} == {0}  # a single image: ROIs on no particular plane
