"""The Fiji command on stacks and hyperstacks, against a real ImageJ1 JVM (headless; the window test is elsewhere)."""
import csv
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from model import predict
from model.constants import PATCH_SIZE
from model.overlay import level_color_8bit

from .conftest import ROOT, focal_stack, require_host

require_host("jpype", "JPype (the fiji extra)")
roifile = require_host("roifile", "roifile (the fiji extra)")

#: Defocus levels of the test stack's slices (``focal_stack``'s): blurred, sharp, a little blurred.
LEVELS = (6, 0, 3)
SHARP_SLICE = 2


@pytest.fixture(scope="module")
def zyx(in_focus_image):
    return focal_stack(in_focus_image)


def imageplus(title, planes, channels=1, slices=None, frames=1):
    from fiji_bridge.convert import numpy_to_imageplus

    imp = numpy_to_imageplus(title, planes)
    imp.setDimensions(channels, slices or len(planes) // (channels * frames), frames)
    imp.setOpenAsHyperStack(channels > 1 or frames > 1)
    return imp


def patch_rois(overlay):
    return [r for r in overlay.toArray() if str(r.getName()).startswith("patch ")]


def border_colour(flat, roi):
    """The colour ImageJ draws on a patch's border (its top edge, a little inside the corner)."""
    box = roi.getBounds()
    pixel = int(flat.getProcessor().getPixel(box.x + PATCH_SIZE // 2, box.y))
    return (pixel >> 16) & 255, (pixel >> 8) & 255, pixel & 255


def test_each_plane_gets_its_own_patches_bound_to_it(imagej, zyx):
    from fiji_bridge import run_focus_quality

    imp = imageplus("stack", zyx)
    run = run_focus_quality(imp)
    assert [p.position.index for p in run.planes] == [1, 2, 3]
    expected = [predict(plane) for plane in zyx]
    for position, result in zip((1, 2, 3), expected):
        rois = [r for r in patch_rois(run.overlay) if r.getPosition() == position]
        assert len(rois) == result.patch_count
        for roi, level, cert in zip(rois, result.patch_levels, result.patch_certainties):
            colour = roi.getStrokeColor()
            assert (colour.getRed(), colour.getGreen(), colour.getBlue()) == level_color_8bit(level, cert)
    assert all(r.getPosition() in (1, 2, 3) for r in run.overlay.toArray())  # legends too


def test_moving_through_the_stack_shows_each_slices_own_patches(imagej, zyx):
    from fiji_bridge import run_focus_quality

    imp = imageplus("stack", zyx)
    run = run_focus_quality(imp, border=3)
    for plane in run.planes:
        imp.setSlice(plane.position.index)
        flat = imp.flatten()  # what the canvas shows on this slice: image and visible overlay
        mine = [r for r in patch_rois(run.overlay) if r.getPosition() == plane.position.index]
        shown = [border_colour(flat, r) for r in mine]
        drawn = [level_color_8bit(level, cert) for level, cert in
                 zip(plane.result.patch_levels, plane.result.patch_certainties)]
        assert sum(a == b for a, b in zip(shown, drawn)) >= 0.95 * len(drawn)
        others = [p for p in run.planes if p is not plane]
        differing = [i for i, d in enumerate(drawn) if all(
            level_color_8bit(o.result.patch_levels[i], o.result.patch_certainties[i]) != d for o in others)]
        assert differing, "the slices' patches should not all look alike"


def test_best_plane_table_and_actions(imagej, zyx):
    from fiji_bridge import run_focus_quality

    imp = imageplus("stack", zyx)
    imp.setSlice(1)
    run = run_focus_quality(imp, go_to_best=True, duplicate_best=True, probability_image=True)
    assert [p.best for p in run.planes] == [i + 1 == SHARP_SLICE for i in range(3)]
    assert imp.getCurrentSlice() == SHARP_SLICE
    table = run.table
    whole = [i for i in range(table.size()) if str(table.getStringValue("Region", i)) == "whole image"]
    assert len(whole) == 3
    assert [table.getValue("Slice", i) for i in whole] == [1, 2, 3]
    assert [table.getValue("BestPlane", i) for i in whole] == [0, 1, 0]
    from fiji_bridge.convert import plane_to_numpy

    np.testing.assert_array_equal(plane_to_numpy(run.best_image), zyx[SHARP_SLICE - 1])
    probabilities = run.probability_image
    assert (probabilities.getNChannels(), probabilities.getNSlices()) == (11, 3)
    assert str(probabilities.getTitle()) == "Focus probabilities of stack (slices 1-3)"


def test_hyperstacks_assess_the_current_channel_or_all(imagej, zyx):
    from fiji_bridge import run_focus_quality

    zcyx = np.stack([[plane, plane[:, ::-1]] for plane in zyx])
    imp = imageplus("hyper", zcyx.reshape(-1, *zyx.shape[1:]), channels=2, slices=3)
    imp.setPosition(2, 1, 1)
    run = run_focus_quality(imp)
    assert [(p.position.channel, p.position.slice) for p in run.planes] == [(2, 1), (2, 2), (2, 3)]
    assert run.covered == "channel 2, slices 1-3"
    every = run_focus_quality(imp, scope="all", go_to_best=True)
    assert [(p.position.channel, p.position.slice) for p in every.planes] == [
        (c, z) for z in (1, 2, 3) for c in (1, 2)]
    assert [(p.position.channel, p.position.slice) for p in every.best_planes()] == [(1, 2), (2, 2)]
    for roi in patch_rois(every.overlay):
        assert roi.hasHyperStackPosition() and roi.getTPosition() == 1
    assert (imp.getC(), imp.getZ()) == (2, SHARP_SLICE)
    current = run_focus_quality(imp, scope="plane")
    assert [(p.position.channel, p.position.slice) for p in current.planes] == [(2, SHARP_SLICE)]


def test_headless_run_on_a_stack_writes_positioned_rois_a_table_and_the_profile(tmp_path, zyx):
    tifffile.imwrite(tmp_path / "stack.tif", zyx, imagej=True, metadata={"axes": "ZYX"})
    proc = subprocess.run([sys.executable, "-m", "model.cli", "fiji", str(tmp_path / "stack.tif"), "-o",
                           str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Fetching" not in proc.stderr  # nothing is downloaded, and nothing says so
    rois = [r for r in roifile.roiread(tmp_path / "out" / "stack.focus.tif") if r.name.startswith("patch ")]
    assert sorted({r.position for r in rois}) == [1, 2, 3]
    with open(tmp_path / "out" / "stack.focus.csv", newline="") as fd:
        rows = [r for r in csv.DictReader(fd) if r["region"] == "whole image"]
    assert [(r["plane"], r["channel"], r["slice"], r["frame"], r["best_plane"]) for r in rows] == [
        ("1", "1", "1", "1", "0"), ("2", "1", "2", "1", "1"), ("3", "1", "3", "1", "0")]
    assert (tmp_path / "out" / "stack.focus_profile.png").stat().st_size > 5000
    one = subprocess.run([sys.executable, "-m", "model.cli", "fiji", str(tmp_path / "stack.tif"), "-o",
                          str(tmp_path / "one"), "--plane", "3", "--no-progress"], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert one.returncode == 0, one.stderr[-2000:]
    rois = [r for r in roifile.roiread(tmp_path / "one" / "stack.focus.tif") if r.name.startswith("patch ")]
    assert {r.position for r in rois} == {3}
