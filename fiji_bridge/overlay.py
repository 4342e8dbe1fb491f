"""The overlay of an assessed image: one ROI per patch and a legend, each bound to its plane.

Colours come from the core (:func:`model.overlay.level_color_8bit`): hue = level,
brightness = certainty, as in the PNGs and CellProfiler. Every ROI carries the
position of the plane it describes (the slice of a stack, or channel, slice and
frame of a hyperstack), so moving through a stack shows each plane's own patches
and legend only.
"""
from model.constants import NUM_LEVELS, PATCH_SIZE
from model.overlay import border_width, level_color_8bit, verdict, wrapped

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
    """The plane's verdict, then 'In focus' [0] [1] ... [10] 'Out of focus', along the bottom-left corner.

    On an image too narrow for that row, the verdict wraps and the labels go below the colours.
    """
    Roi, TextRoi, Font = jimport("ij.gui.Roi"), jimport("ij.gui.TextRoi"), jimport("java.awt.Font")
    rows, cols = result.image_shape
    box = max(8, cols // 45)
    font = Font("SansSerif", Font.PLAIN, box)

    def text(label, name=None):
        roi = TextRoi(0, 0, label, font)
        roi.setStrokeColor(jimport("java.awt.Color").WHITE)
        roi.setName(f"{LEGEND_ROI_PREFIX}{name or label}")
        return roi

    def add(roi, x, top):
        roi.setLocation(int(x), int(top))
        _bind(roi, imp, position)
        overlay.add(roi)

    def size(roi):
        bounds = roi.getBounds()
        return int(bounds.width), int(bounds.height)

    left, right = text("In focus"), text("Out of focus")
    (lw, lh), (rw, _) = size(left), size(right)
    said = wrapped(verdict(result), cols - 4, lambda line: size(TextRoi(0, 0, line, font))[0])
    said = text("\n".join(said), name="verdict")
    if 2 + lw + box // 2 + NUM_LEVELS * box + box // 2 + rw <= cols - 2:
        y = rows - box - 2
        add(left, 2, y - box // 4)
        add(said, 2, y - box // 4 - 1 - size(said)[1])
        x0 = 2 + lw + box // 2
        add(right, x0 + NUM_LEVELS * box + box // 2, y - box // 4)
    else:
        label_rows = 1 if lw + rw + box <= cols - 4 else 2
        bottom = rows - 2 - label_rows * lh
        add(left, 2, bottom)
        add(right, max(2, cols - 2 - rw), bottom + (label_rows - 1) * lh)
        box = max(2, min(box, (cols - 4) // NUM_LEVELS))
        y = bottom - box - 2
        add(said, 2, y - 2 - size(said)[1])
        x0 = 2
    for level in range(NUM_LEVELS):
        roi = Roi(x0 + level * box, y, box, box)
        roi.setFillColor(_color(level))
        roi.setName(f"{LEGEND_ROI_PREFIX}level {level}")
        _bind(roi, imp, position)
        overlay.add(roi)
