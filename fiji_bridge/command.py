"""The focus command on an ImageJ image: overlay, "Focus Quality" results table, probability image.

Everything is computed by :func:`model.predict`; this module only turns the
result into ImageJ1 objects (``ij.gui.Roi``, ``ij.measure.ResultsTable``), the
same in Fiji and in plain ImageJ1.
"""
from dataclasses import dataclass

import numpy as np

from model import metrics
from model.constants import NUM_LEVELS, PATCH_SIZE
from model.inference import FocusResult, predict
from model.overlay import border_width, level_color_8bit

from ._java import jimport
from .convert import numpy_to_imageplus, plane_to_numpy

TITLE = "Microscope Image Focus Quality"
TABLE_TITLE = "Focus Quality"
#: Opacity of filled ("solid") patches, so the cells stay visible underneath.
SOLID_ALPHA = 90
PATCH_ROI_PREFIX = "patch "
LEGEND_ROI_PREFIX = "legend "
PROBABILITY_COLUMNS = [f"P{k}" for k in range(NUM_LEVELS)]


@dataclass
class FocusRun:
    """What one run of the command made: the core's result and the ImageJ objects showing it."""

    result: FocusResult
    overlay: object
    table: object
    probability_image: object = None


def run_focus_quality(imp, *, tiles_x=None, tiles_y=None, border=None, solid=False,
                      probability_image=False, plane=None, max_value=None, model=None):
    """Assess the focus of an ImagePlus and annotate it in place.

    Parameters
    ----------
    imp : ij.ImagePlus
        8-bit, 16-bit or 32-bit grayscale; scaled as :func:`model.predict` does.
    tiles_x, tiles_y : int, optional
        Patch columns / rows; default covers the image.
    border : int, optional
        Border width of the patch outlines in pixels; default grows with the image.
    solid : bool
        Fill the patches (translucent) instead of outlining them.
    probability_image : bool
        Also make the 11-channel probability image (NaN outside the patches).
    plane : int, optional
        1-based plane of a stack (required for stacks).
    max_value : float, optional
        Intensity scale override, e.g. 65535 for a 32-bit image holding raw counts.
    model : FocusModel or path, optional

    Returns
    -------
    FocusRun
        The overlay is also set on ``imp``.

    Raises
    ------
    model.ImageError
        For colour images, stacks without a plane, too-small images, values off the scale.
    """
    pixels = plane_to_numpy(imp, plane)
    result = predict(pixels, n_rows=tiles_y, n_cols=tiles_x, max_value=max_value, model=model)
    overlay = make_overlay(result, border=border, solid=solid)
    imp.setOverlay(overlay)
    run = FocusRun(result, overlay, results_table(result, str(imp.getTitle())))
    if probability_image:
        run.probability_image = make_probability_image(result, f"Focus probabilities of {imp.getTitle()}")
    return run


def _color(level, certainty=1.0, alpha=255):
    r, g, b = level_color_8bit(level, certainty)
    return jimport("java.awt.Color")(r, g, b, alpha)


def make_overlay(result, *, border=None, solid=False):
    """One ROI per patch, coloured as the core's PNGs (hue = level, brightness = certainty), and a legend."""
    Roi = jimport("ij.gui.Roi")
    overlay = jimport("ij.gui.Overlay")()
    width = float(border_width(result.image_shape) if border is None else border)
    for i, ((row, col), level, cert) in enumerate(
            zip(result.patch_origins, result.patch_levels, result.patch_certainties)):
        roi = Roi(int(col), int(row), PATCH_SIZE, PATCH_SIZE)
        roi.setName(f"{PATCH_ROI_PREFIX}{i}: level {level}, certainty {cert:.2f}")
        if solid:
            roi.setFillColor(_color(level, cert, SOLID_ALPHA))
        else:
            roi.setStrokeColor(_color(level, cert))
            roi.setStrokeWidth(width)
        overlay.add(roi)
    _add_legend(overlay, result.image_shape)
    return overlay


def _add_legend(overlay, shape):
    """'In focus' [0] [1] ... [10] 'Out of focus' along the bottom-left corner."""
    Roi, TextRoi, Font = jimport("ij.gui.Roi"), jimport("ij.gui.TextRoi"), jimport("java.awt.Font")
    rows, cols = shape
    box = max(8, cols // 45)
    font = Font("SansSerif", Font.PLAIN, box)
    y = rows - box - 2
    x = 2

    def text(label, at):
        roi = TextRoi(at, y - box // 4, label, font)
        roi.setStrokeColor(jimport("java.awt.Color").WHITE)
        roi.setName(f"{LEGEND_ROI_PREFIX}{label}")
        overlay.add(roi)
        return int(roi.getBounds().width)

    x += text("In focus", x) + box // 2
    for level in range(NUM_LEVELS):
        roi = Roi(x, y, box, box)
        roi.setFillColor(_color(level))
        roi.setName(f"{LEGEND_ROI_PREFIX}level {level}")
        overlay.add(roi)
        x += box
    text("Out of focus", x + box // 2)


#: Whole-image columns; NaN on the patch rows.
SUMMARY_COLUMNS = {"MeanCertainty": "mean_certainty", "MaxCertainty": "max_certainty",
                   "WeightedCertainty": "weighted_certainty", "PatchCount": "patch_count"}
#: Decimal places in the table and its CSV (ImageJ's default of 3 would round small probabilities to 0).
TABLE_DECIMALS = 6


def results_table(result, image_title):
    """The "Focus Quality" ResultsTable: one row per patch, then one "whole image" row."""
    table = jimport("ij.measure.ResultsTable")()
    table.setPrecision(TABLE_DECIMALS)
    not_whole = dict.fromkeys(SUMMARY_COLUMNS, float("nan"))
    for patch in result.patch_table():
        probabilities = [patch[f"probability_{k}"] for k in range(NUM_LEVELS)]
        _add_row(table, image_title, f"patch {patch['patch']}", (patch["col"], patch["row"], PATCH_SIZE, PATCH_SIZE),
                 patch["level"], patch["certainty"], probabilities, not_whole)
    summary = result.summary()
    rows, cols = result.image_shape
    _add_row(table, image_title, "whole image", (0, 0, cols, rows), summary["predicted_level"],
             summary["aggregate_certainty"], result.probabilities,
             {column: summary[key] for column, key in SUMMARY_COLUMNS.items()})
    return table


def _add_row(table, image_title, label, box, level, certainty, probabilities, extra):
    table.incrementCounter()
    table.addValue("Image", image_title)
    table.addValue("Region", label)
    for name, value in zip(("X", "Y", "Width", "Height"), box):
        table.addValue(name, float(value))
    table.addValue("Level", float(level))
    table.addValue("Certainty", float(certainty))
    table.addValue("ExpectedLevel", float(metrics.expected_level(probabilities)))
    table.addValue("InFocus", float(metrics.in_focus(probabilities)))
    for column, p in zip(PROBABILITY_COLUMNS, probabilities):
        table.addValue(column, float(p))
    for column, value in extra.items():
        table.addValue(column, float(value))


def make_probability_image(result, title):
    """An 11-channel 32-bit image: channel k holds each patch's P(level k), NaN outside the patches."""
    planes = np.full((NUM_LEVELS,) + tuple(result.image_shape), np.nan, dtype=np.float32)
    for (row, col), p in zip(result.patch_origins, result.patch_probabilities):
        planes[:, row:row + PATCH_SIZE, col:col + PATCH_SIZE] = p[:, None, None]
    imp = numpy_to_imageplus(title, planes)
    imp.setDimensions(NUM_LEVELS, 1, 1)
    for k in range(NUM_LEVELS):
        imp.getStack().setSliceLabel(f"P(level {k})", k + 1)
    return imp
