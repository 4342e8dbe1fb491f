"""The Fiji command against a real ImageJ1 JVM (Debian's libij-java through scyjava), headless and under Xvfb."""
import csv
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from model import ImageError, predict
from model.overlay import level_color_8bit

from .conftest import IN_FOCUS, OUT_OF_FOCUS, ROOT, require_host

require_host("jpype", "JPype (the fiji extra)")
roifile = require_host("roifile", "roifile (the fiji extra)")


@pytest.fixture
def opened(imagej):
    from fiji_bridge import jimport

    return lambda path: jimport("ij.IJ").openImage(str(path))


def patch_rois(overlay):
    rois = [overlay.get(i) for i in range(overlay.size())]
    return [r for r in rois if str(r.getName()).startswith("patch ")]


def test_overlay_has_one_coloured_roi_per_patch(opened, in_focus_image):
    from fiji_bridge import run_focus_quality

    imp = opened(IN_FOCUS)
    run = run_focus_quality(imp)
    expected = predict(in_focus_image)
    rois = patch_rois(imp.getOverlay())
    assert len(rois) == expected.patch_count
    for roi, (row, col), level, cert in zip(rois, expected.patch_origins, expected.patch_levels,
                                            expected.patch_certainties):
        bounds = roi.getBounds()
        assert (bounds.x, bounds.y, bounds.width, bounds.height) == (col, row, 84, 84)
        colour = roi.getStrokeColor()
        assert (colour.getRed(), colour.getGreen(), colour.getBlue()) == level_color_8bit(level, cert)
    assert run.result.predicted_level == expected.predicted_level
    legend = [str(imp.getOverlay().get(i).getName()) for i in range(imp.getOverlay().size())]
    assert "legend In focus" in legend and "legend Out of focus" in legend


@pytest.mark.parametrize("width", [100, 250, 696])
def test_the_legend_fits_inside_any_image_without_overlaps(opened, in_focus_image, tmp_path, width):
    from fiji_bridge import run_focus_quality

    path = tmp_path / "crop.tif"
    tifffile.imwrite(path, np.ascontiguousarray(in_focus_image[:, -width:]))
    imp = opened(path)
    run_focus_quality(imp)
    rois = [imp.getOverlay().get(i) for i in range(imp.getOverlay().size())]
    legend = [r for r in rois if str(r.getName()).startswith("legend ")]
    boxes = [r.getBounds() for r in legend]
    assert len(boxes) == 14  # the verdict, two labels and 11 colours
    names = [str(r.getName()) for r in legend]
    verdict_box, label_box = boxes[names.index("legend verdict")], boxes[names.index("legend In focus")]
    assert (verdict_box.height > label_box.height) == (width == 100)  # only the narrowest wraps its verdict
    for b in boxes:
        assert 0 <= b.x and b.x + b.width <= width and 0 <= b.y and b.y + b.height <= in_focus_image.shape[0]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.intersects(b), (a, b)


def test_results_table_matches_the_core(opened, out_of_focus_image):
    from fiji_bridge import run_focus_quality

    run = run_focus_quality(opened(OUT_OF_FOCUS))
    expected = predict(out_of_focus_image)
    table = run.table
    assert table.size() == expected.patch_count + 1
    levels = np.where(expected.patch_empty, np.nan, expected.patch_levels)  # no level where nothing to judge
    np.testing.assert_array_equal(np.array(table.getColumn("Level"))[:-1], levels)
    np.testing.assert_allclose(np.array(table.getColumn("Certainty"))[:-1], expected.patch_certainties, rtol=1e-5)
    np.testing.assert_allclose(np.array(table.getColumn("P3"))[:-1], expected.patch_probabilities[:, 3], rtol=1e-5)
    last = table.size() - 1
    assert str(table.getStringValue("Region", last)) == "whole image"
    assert table.getValue("Level", last) == expected.predicted_level
    np.testing.assert_allclose(table.getValue("Certainty", last), expected.certainties["aggregate"], rtol=1e-5)
    np.testing.assert_allclose(table.getValue("ExpectedLevel", last), expected.expected_level, rtol=1e-5)
    assert table.getValue("InFocus", last) == float(expected.in_focus)
    assert table.getValue("PatchCount", last) == expected.patch_count
    assert np.isnan(table.getValue("PatchCount", 0))


def test_solid_patches_fewer_tiles_and_probability_image(opened, in_focus_image):
    from fiji_bridge import run_focus_quality

    run = run_focus_quality(opened(IN_FOCUS), tiles_x=3, tiles_y=2, solid=True, probability_image=True)
    expected = predict(in_focus_image, n_rows=2, n_cols=3)
    rois = patch_rois(run.overlay)
    assert len(rois) == 6 and all(r.getFillColor() is not None for r in rois)
    imp = run.probability_image
    assert imp.getNChannels() == 11 and imp.getBitDepth() == 32
    from fiji_bridge.convert import plane_to_numpy

    level4 = plane_to_numpy(imp, plane=5)
    (row, col) = expected.patch_origins[0]
    np.testing.assert_allclose(level4[row + 10, col + 10], expected.patch_probabilities[0, 4], rtol=1e-6)
    assert np.isnan(level4[0, 0])  # the margin around the evenly spread patches


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_pixel_types_follow_the_core_scale_rules(imagej, in_focus_image, dtype):
    from fiji_bridge import run_focus_quality
    from fiji_bridge.convert import numpy_to_imageplus

    pixels = {np.uint8: (in_focus_image // 13).astype(np.uint8), np.uint16: in_focus_image,
              np.float32: (in_focus_image / 65535).astype(np.float32)}[dtype]
    run = run_focus_quality(numpy_to_imageplus("cells", pixels))
    expected = predict(pixels)
    np.testing.assert_allclose(run.result.patch_probabilities, expected.patch_probabilities, rtol=1e-5, atol=1e-7)


def test_float_counts_need_max_value(imagej, in_focus_image):
    from fiji_bridge import run_focus_quality
    from fiji_bridge.convert import numpy_to_imageplus

    imp = numpy_to_imageplus("counts", in_focus_image.astype(np.float32))
    with pytest.raises(ImageError, match="counts values span .* Pass max_value"):
        run_focus_quality(imp)
    assert run_focus_quality(imp, max_value=65535).result.predicted_level == predict(in_focus_image).predicted_level


def test_rgb_is_refused_and_planes_outside_the_stack_too(opened, imagej, in_focus_image, out_of_focus_image):
    from fiji_bridge import jimport, run_focus_quality
    from fiji_bridge.convert import numpy_to_imageplus

    rgb = opened(IN_FOCUS)
    rgb.setProcessor(rgb.getProcessor().convertToRGB())
    with pytest.raises(ImageError, match="RGB"):
        run_focus_quality(rgb)
    stack = numpy_to_imageplus("stack", np.stack([in_focus_image, out_of_focus_image]))
    with pytest.raises(ImageError, match=r"plane 3 is outside 1..2 for stack \(--plane N"):
        run_focus_quality(stack, plane=3)
    assert run_focus_quality(stack, plane=2).result.predicted_level == predict(out_of_focus_image).predicted_level
    assert jimport("ij.IJ").getInstance() is None  # nothing opened a window


def test_saved_tiff_carries_the_overlay(opened, tmp_path, in_focus_image):
    from fiji_bridge import jimport, run_focus_quality

    imp = opened(IN_FOCUS)
    run_focus_quality(imp)
    path = tmp_path / "annotated.tif"
    assert jimport("ij.IJ").saveAsTiff(imp, str(path))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        np.testing.assert_array_equal(tif.asarray(), in_focus_image)
    rois = [r for r in roifile.roiread(path) if r.name.startswith("patch ")]
    expected = predict(in_focus_image)
    assert len(rois) == expected.patch_count
    for roi, (row, col), level, cert in zip(rois, expected.patch_origins, expected.patch_levels,
                                            expected.patch_certainties):
        assert (roi.top, roi.left, roi.bottom, roi.right) == (row, col, row + 84, col + 84)
        a, r, g, b = roi.stroke_color
        assert (a, (r, g, b)) == (255, level_color_8bit(level, cert))


def test_cli_writes_tiffs_and_tables_and_reports_bad_files(tmp_path, in_focus_image):
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "model.cli", "fiji", str(IN_FOCUS), str(bad), "-o", str(out),
                           "--probabilities", "--no-progress"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "notes.tif" in proc.stderr and "Traceback" not in proc.stderr
    stem = IN_FOCUS.stem
    assert len(roifile.roiread(out / f"{stem}.focus.tif")) > predict(in_focus_image).patch_count
    with open(out / f"{stem}.focus.csv", newline="") as fd:
        rows = list(csv.DictReader(fd))
    assert rows[-1]["region"] == "whole image" and rows[-1]["best_plane"] == ""
    assert int(float(rows[-1]["level"])) == predict(in_focus_image).predicted_level
    assert not (out / f"{stem}.focus_profile.png").exists()  # one plane: no profile
    assert tifffile.imread(out / f"{stem}.probabilities.tif").shape[0] == 11


def test_cli_reports_a_truncated_file_instead_of_hanging_in_imagej(tmp_path, in_focus_image):
    """ImageJ's own TIFF reader never returns on a zlib TIFF cut in half: the file is checked first."""
    tifffile.imwrite(tmp_path / "whole.tif", in_focus_image, compression="zlib")
    data = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[:len(data) // 2])
    proc = subprocess.run([sys.executable, "-m", "model.cli", "fiji", str(tmp_path / "cut.tif"),
                           str(tmp_path / "whole.tif"), "-o", str(tmp_path / "out"), "--no-progress"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"{tmp_path / 'cut.tif'}: truncated file" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "whole.focus.csv").exists()
