"""Which planes of an ImageJ image the command assesses, and how to name them.

ImageJ counts from 1: channel, slice (z) and frame (t) of a hyperstack, and
the stack index of a plane. A plain stack is slices only.
"""
from dataclasses import dataclass

from model.scaling import ImageError

#: What the command assesses: the plane on screen, every plane (z and t) of the channel on
#: screen, or every plane of every channel (channels are separate images to the model).
SCOPES = {"plane": "the current plane", "stack": "every plane of the current channel",
          "all": "every plane of every channel"}


@dataclass(frozen=True)
class Position:
    """Where a plane sits in its image (1-based, as ImageJ counts)."""

    channel: int
    slice: int
    frame: int
    index: int


def planes_to_assess(imp, scope="stack", *, plane=None, channel=None):
    """The :class:`Position` of each plane to assess, in stack order.

    Parameters
    ----------
    imp : ij.ImagePlus
    scope : {"plane", "stack", "all"}
        See :data:`SCOPES`; ``"stack"`` and ``"all"`` are the same for a single image.
    plane : int, optional
        One plane by its stack index (1-based); overrides ``scope``.
    channel : int, optional
        The channel of ``scope="stack"`` (default: the one on screen).

    Raises
    ------
    ImageError
        For a plane or channel outside the image, or an unknown scope.
    """
    title, size = imp.getTitle(), int(imp.getStackSize())
    if scope not in SCOPES:
        raise ImageError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    if plane is not None:
        if not 1 <= int(plane) <= size:
            raise ImageError(f"plane {plane} is outside 1..{size} for {title} (--plane N, 1-based)")
        return [position_of(imp, int(plane))]
    if scope == "plane":
        return [position_of(imp, int(imp.getCurrentSlice()))]
    channels = int(imp.getNChannels())
    if channel is not None and not 1 <= int(channel) <= channels:
        raise ImageError(f"channel {channel} is outside 1..{channels} for {title}")
    wanted = range(1, channels + 1) if scope == "all" else [int(channel or imp.getC())]
    return [p for p in (position_of(imp, i) for i in range(1, size + 1)) if p.channel in wanted]


def position_of(imp, index):
    c, z, t = (int(v) for v in imp.convertIndexToPosition(int(index)))
    return Position(c, z, t, int(index))


def describe(imp, positions):
    """Words for the planes a run covered, e.g. ``"channel 1, slices 1-3"`` (empty for a single image)."""
    if int(imp.getStackSize()) == 1:
        return ""
    parts = []
    for name, values, total in (("channel", [p.channel for p in positions], imp.getNChannels()),
                                ("slice", [p.slice for p in positions], imp.getNSlices()),
                                ("frame", [p.frame for p in positions], imp.getNFrames())):
        if int(total) > 1:
            parts.append(_span(name, sorted(set(values))))
    return ", ".join(parts)


def _span(name, values):
    if len(values) == 1:
        return f"{name} {values[0]}"
    if values == list(range(values[0], values[-1] + 1)):
        return f"{name}s {values[0]}-{values[-1]}"
    return f"{name}s {', '.join(map(str, values))}"
