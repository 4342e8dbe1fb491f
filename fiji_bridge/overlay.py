"""The overlay of an assessed image: one ROI per patch and a legend, each bound to its plane.

Colours come from the core (:func:`model.overlay.level_color_8bit`): hue = level,
brightness = certainty, as in the PNGs and CellProfiler. Every ROI carries the
position of the plane it describes (the slice of a stack, or channel, slice and
frame of a hyperstack), so moving through a stack shows each plane's own patches
and legend only.
"""
from model.constants import NUM_LEVELS, PATCH_SIZE
from model.overlay import border_width, level_color_8bit, verdict

from ._java import jimport

#: Opacity of filled ("solid") patches, so the cells stay visible underneath.
SOLID_ALPHA = 90
PATCH_ROI_PREFIX = "patch "
LEGEND_ROI_PREFIX = "legend "


def add_plane(overlay, imp, position, result, *, border=None, solid=False):
    """Add one plane's patch ROIs and legend to ``overlay``, bound to ``position`` (a planes.Position)."""
    Roi = jimport("ij.gui.Roi")
    width = float(border_width(result.image_shape) if border is None else border)
    for i, ((row, col), level, cert, empty) in enumerate(
            zip(result.patch_origins, result.patch_levels, result.patch_certainties, result.patch_empty)):
        roi = Roi(int(col), int(row), PATCH_SIZE, PATCH_SIZE)
        what = "nothing to judge" if empty else f"level {level}, certainty {cert:.2f}"
        roi.setName(f"{PATCH_ROI_PREFIX}{i}: {what}")
        if solid:
            roi.setFillColor(_color(level, cert, SOLID_ALPHA))
        else:
            roi.setStrokeColor(_color(level, cert))
            roi.setStrokeWidth(width)
        _bind(roi, imp, position)
        overlay.add(roi)
    _add_legend(overlay, imp, position, result)


def _bind(roi, imp, position):
    if imp.isHyperStack():
        roi.setPosition(position.channel, position.slice, position.frame)
    elif imp.getStackSize() > 1:
        roi.setPosition(position.index)


def _color(level, certainty=1.0, alpha=255):
    r, g, b = level_color_8bit(level, certainty)
    return jimport("java.awt.Color")(r, g, b, alpha)


def _add_legend(overlay, imp, position, result):
    """The plane's verdict, then 'In focus' [0] [1] ... [10] 'Out of focus', along the bottom-left corner."""
    Roi, TextRoi, Font = jimport("ij.gui.Roi"), jimport("ij.gui.TextRoi"), jimport("java.awt.Font")
    rows, cols = result.image_shape
    box = max(8, cols // 45)
    font = Font("SansSerif", Font.PLAIN, box)
    y = rows - box - 2

    def text(label, x, top, name=None):
        roi = TextRoi(x, top, label, font)
        roi.setStrokeColor(jimport("java.awt.Color").WHITE)
        roi.setName(f"{LEGEND_ROI_PREFIX}{name or label}")
        _bind(roi, imp, position)
        overlay.add(roi)
        return int(roi.getBounds().width)

    text(verdict(result), 2, y - box - box // 2, name="verdict")
    x = 2 + text("In focus", 2, y - box // 4) + box // 2
    for level in range(NUM_LEVELS):
        roi = Roi(x, y, box, box)
        roi.setFillColor(_color(level))
        roi.setName(f"{LEGEND_ROI_PREFIX}level {level}")
        _bind(roi, imp, position)
        overlay.add(roi)
        x += box
    text("Out of focus", x + box // 2, y - box // 4)
