"""The focus command on an ImageJ image, stack or hyperstack.

For each plane it assesses (see :mod:`fiji_bridge.planes`), :func:`model.predict`
gives the focus; this module turns the results into ImageJ1 objects, the same
in Fiji and in plain ImageJ1: an overlay whose ROIs are bound to their planes,
the "Focus Quality" table, the probability image, and the best plane of each
focal series (shown, or duplicated into a new image).
"""
from dataclasses import dataclass

import numpy as np

from model.constants import NUM_LEVELS, PATCH_SIZE
from model.inference import best_in_series, predict
from model.scaling import ImageError, in_host_words

from . import overlay as rois
from ._java import jimport
from .convert import numpy_to_imageplus, plane_to_numpy
from .planes import describe, planes_to_assess
from .table import results_table, rows

TITLE = "Microscope Image Focus Quality"
TABLE_TITLE = "Focus Quality"


@dataclass
class AssessedPlane:
    """One plane's place in the image, its focus, and whether it is the sharpest of its series."""

    position: object  # planes.Position
    result: object  # model.FocusResult
    best: bool = None  # None: the only plane of its channel and frame


@dataclass
class FocusRun:
    """What one run of the command made."""

    planes: list
    overlay: object
    table: object
    table_rows: list
    probability_image: object = None
    best_image: object = None
    covered: str = ""  # "channel 1, slices 1-3"; empty for a single image

    @property
    def result(self):
        """The focus of the first (for a single image, the only) plane."""
        return self.planes[0].result

    def best_planes(self):
        return [p for p in self.planes if p.best]


def run_focus_quality(imp, *, scope="stack", plane=None, channel=None, tiles_x=None, tiles_y=None, border=None,
                      solid=False, probability_image=False, go_to_best=False, duplicate_best=False,
                      max_value=None, model=None):
    """Assess the focus of an ImagePlus, annotate it in place and tabulate the results.

    Parameters
    ----------
    imp : ij.ImagePlus
        8-bit, 16-bit or 32-bit grayscale image, stack or hyperstack; scaled as
        :func:`model.predict` does.
    scope : {"stack", "plane", "all"}
        Every plane (slices and frames) of the current channel, the current
        plane only, or every plane of every channel.
    plane : int, optional
        One plane by its 1-based stack index (overrides ``scope``).
    channel : int, optional
        The channel of ``scope="stack"`` (default: the current one).
    tiles_x, tiles_y : int, optional
        Patch columns / rows; default covers the image.
    border : int, optional
        Border width of the patch outlines in pixels; default grows with the image.
    solid : bool
        Fill the patches (translucent) instead of outlining them.
    probability_image : bool
        Also make the probability image: one hyperstack, the 11 levels as channels,
        the assessed planes as slices, NaN outside the patches.
    go_to_best : bool
        Show the sharpest plane of the current channel and frame.
    duplicate_best : bool
        Make a new image of the sharpest plane of each frame (all channels).
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
        For colour images, planes outside the image, too-small images, values off the scale.
    """
    positions = planes_to_assess(imp, scope, plane=plane, channel=channel)
    try:
        assessed = [AssessedPlane(p, predict(plane_to_numpy(imp, p.index), n_rows=tiles_y, n_cols=tiles_x,
                                             max_value=max_value, model=model)) for p in positions]
    except ImageError as exc:  # the core names its argument; ImageJ users know the image by its title
        raise ImageError(in_host_words(exc, imp.getTitle())) from None
    marks = best_in_series([(p.position.channel, p.position.frame) for p in assessed], [p.result for p in assessed])
    for plane, best in zip(assessed, marks):
        plane.best = best
    overlay = jimport("ij.gui.Overlay")()
    for plane_ in assessed:
        rois.add_plane(overlay, imp, plane_.position, plane_.result, border=border, solid=solid)
    imp.setOverlay(overlay)
    title = str(imp.getTitle())
    table_rows = rows(title, assessed)
    run = FocusRun(assessed, overlay, results_table(table_rows), table_rows, covered=describe(imp, positions))
    if probability_image:
        run.probability_image = make_probability_image(
            assessed, f"Focus probabilities of {title}" + (f" ({run.covered})" if run.covered else ""))
    if go_to_best:
        show_best_plane(imp, assessed)
    if duplicate_best:
        run.best_image = duplicate_best_planes(imp, assessed)
    return run


def show_best_plane(imp, assessed):
    """Move ``imp`` to the sharpest plane of its current channel and frame (if that series was assessed)."""
    current = (int(imp.getC()), int(imp.getT()))
    for plane in assessed:
        if plane.best and (plane.position.channel, plane.position.frame) == current:
            imp.setPosition(plane.position.channel, plane.position.slice, plane.position.frame)
            return plane.position
    return None


def duplicate_best_planes(imp, assessed):
    """A new image: for each frame, every channel at the slice where the reference channel is sharpest.

    The reference channel is the current channel if it was assessed, else the
    first assessed one. Returns None when no plane could be picked.
    """
    channels = sorted({p.position.channel for p in assessed})
    reference = int(imp.getC()) if int(imp.getC()) in channels else channels[0]
    best = {p.position.frame: p.position.slice for p in assessed if p.best and p.position.channel == reference}
    if not best:
        return None
    source = imp.getStack()
    stack = jimport("ij.ImageStack")(int(imp.getWidth()), int(imp.getHeight()))
    for frame in sorted(best):
        for c in range(1, int(imp.getNChannels()) + 1):
            index = int(imp.getStackIndex(c, best[frame], frame))
            stack.addSlice(f"c{c} z{best[frame]} t{frame}", source.getProcessor(index).duplicate())
    copy = jimport("ij.ImagePlus")(f"{imp.getTitle()} best focus", stack)
    copy.setDimensions(int(imp.getNChannels()), 1, len(best))
    copy.setOpenAsHyperStack(copy.getStackSize() > 1 and (imp.getNChannels() > 1 or len(best) > 1))
    return copy


def make_probability_image(assessed, title):
    """A 32-bit hyperstack: the 11 levels as channels, the assessed planes as slices, NaN outside the patches."""
    shape = assessed[0].result.image_shape
    planes = np.full((len(assessed), NUM_LEVELS) + tuple(shape), np.nan, dtype=np.float32)
    for i, plane in enumerate(assessed):
        for (row, col), p in zip(plane.result.patch_origins, plane.result.patch_probabilities):
            planes[i, :, row:row + PATCH_SIZE, col:col + PATCH_SIZE] = p[:, None, None]
    imp = numpy_to_imageplus(title, planes.reshape((-1,) + tuple(shape)))
    imp.setDimensions(NUM_LEVELS, len(assessed), 1)
    for i, plane in enumerate(assessed):
        where = plane.position
        for k in range(NUM_LEVELS):
            imp.getStack().setSliceLabel(f"P(level {k}) c{where.channel} z{where.slice} t{where.frame}",
                                         i * NUM_LEVELS + k + 1)
    imp.setOpenAsHyperStack(True)
    return imp


__all__ = ["run_focus_quality", "FocusRun", "AssessedPlane", "TITLE", "TABLE_TITLE"]
