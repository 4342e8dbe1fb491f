"""Annotated images: a coloured border per patch (hue = level, brightness = certainty) and a legend.

The colours come from :func:`level_color` only, so the CLI's PNGs, the
CellProfiler display and the Fiji overlay all look the same.
"""
import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .constants import NUM_LEVELS, PATCH_SIZE

#: Annotated pictures are at most this many pixels on a side; larger images are drawn reduced.
MAX_PICTURE_SIDE = 4096

#: Hue of level 10 (level 0 is red, 0.0): the spectrum runs red, yellow, green, cyan, blue.
#: Stopping at blue keeps the last level from wrapping back towards red (as the Fiji plugin does).
LAST_LEVEL_HUE = 2 / 3


def level_color(level, certainty=1.0):
    """RGB in [0, 1] for a level (0-10) at a certainty (0-1): hue = level, brightness = certainty.

    Examples
    --------
    >>> level_color(0).tolist(), level_color(10, 0.5).tolist()
    ([1.0, 0.0, 0.0], [0.0, 0.0, 0.5])
    """
    hue = LAST_LEVEL_HUE * float(level) / (NUM_LEVELS - 1)
    return np.array(colorsys.hsv_to_rgb(hue, 1.0, float(np.clip(certainty, 0, 1))))


def level_color_8bit(level, certainty=1.0):
    """:func:`level_color` as a tuple of three ints 0-255."""
    return tuple(int(round(255 * v)) for v in level_color(level, certainty))


def display_gray(image):
    """A 2-D image contrast-stretched (0.5-99.8th percentile) to uint8 for display.

    NaN or infinite pixels (allowed where no patch lies, e.g. a registered
    image's border) are drawn black and left out of the percentiles.
    """
    img = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(img)
    lo, hi = np.percentile(img[finite], [0.5, 99.8]) if finite.any() else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1e-12
    return (np.where(finite, np.clip((img - lo) / (hi - lo), 0, 1), 0) * 255).astype(np.uint8)


def border_width(shape):
    """Patch border width for an image of ``shape``: 2 px, thicker on large images."""
    return max(2, int(round(min(shape[:2]) / 300)))


def _font(size):
    try:
        return ImageFont.load_default(size=size)  # scalable since Pillow 10.1
    except TypeError:  # the CellProfiler app bundles its own Pillow, which may be older: its fixed bitmap font
        return ImageFont.load_default()


def annotate(image, result, *, width=None, max_side=MAX_PICTURE_SIDE):
    """An RGB picture of ``image`` with ``result``'s patch borders and a legend below.

    Parameters
    ----------
    image : (M, N) array_like
        The image that was assessed (any intensity scale); a lazily read plane
        is read band by band.
    result : FocusResult
    width : int, optional
        Border width in pixels; default grows with the picture size.
    max_side : int
        Images larger than this are drawn reduced by a whole factor (block means),
        so the picture of a slide-scanner tile stays a few megabytes.

    Returns
    -------
    (M' + legend, N', 3) ndarray of uint8, with M' = M, N' = N unless reduced.
    """
    factor = max(1, math.ceil(max(result.image_shape) / max_side))
    gray = display_gray(reduced(image, factor))
    rgb = np.repeat(gray[..., None], 3, axis=2)
    w = border_width(gray.shape) if width is None else int(width)
    for (r, c), level, cert in zip(result.patch_origins, result.patch_levels, result.patch_certainties):
        colour = (255 * level_color(level, cert)).astype(np.uint8)
        top, left = round(r / factor), round(c / factor)
        bottom, right = round((r + PATCH_SIZE) / factor), round((c + PATCH_SIZE) / factor)
        rgb[top:top + w, left:right] = colour
        rgb[bottom - w:bottom, left:right] = colour
        rgb[top:bottom, left:left + w] = colour
        rgb[top:bottom, right - w:right] = colour
    return np.concatenate([rgb, legend(result, gray.shape[1])], axis=0)


def reduced(image, factor, band_rows=1024):
    """``image`` shrunk by a whole ``factor`` (block means), read ``band_rows`` rows at a time."""
    if factor == 1:
        return np.asarray(image)
    rows, cols = (n // factor for n in image.shape)
    out = np.empty((rows, cols), dtype=np.float32)
    step = max(1, band_rows // factor) * factor
    for top in range(0, rows * factor, step):
        band = np.asarray(image[top:min(top + step, rows * factor)], dtype=np.float32)[:, :cols * factor]
        out[top // factor:top // factor + len(band) // factor] = band.reshape(
            -1, factor, cols, factor).mean(axis=(1, 3))
    return out


def verdict(result):
    """The one-line whole-image verdict that every host's legend shows."""
    if not result.judged:
        return "nothing to judge"
    words = "in focus" if result.in_focus else "out of focus"
    return (f"level {result.predicted_level} (expected {result.expected_level:.1f}), "
            f"certainty {result.certainties['aggregate']:.2f}: {words}")


def legend(result, width):
    """The legend strip: the whole-image verdict, then the 11 level colours between "in focus" and "out of focus".

    On narrow images the verdict wraps and the labels go below the colours, so nothing overlaps or is cut off.
    """
    height = max(56, width // 10)
    font = _font(max(11, height // 4))
    measure = font.getlength
    lines = wrapped(verdict(result), width - 12, measure)
    left_label, right_label = "in focus", "out of focus (dim = uncertain)"
    lw, rw = measure(left_label), measure(right_label)
    x0, x1 = 6 + lw + 6, width - rw - 12
    one_row = len(lines) == 1 and x1 > x0 + NUM_LEVELS * 8
    if not one_row:
        if rw > width - 12:
            right_label, rw = "out of focus", measure("out of focus")
        line = round(1.4 * font.getbbox("Ag")[3])
        labels = [(left_label, right_label)] if lw + rw + 6 <= width - 12 else [(left_label, ""), ("", right_label)]
        height = 3 + line * (len(lines) + 1 + len(labels)) + 2
    strip = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(strip)
    colour = level_color_8bit(result.predicted_level, 1.0) if result.judged else (255, 255, 255)
    if one_row:
        draw.text((6, 3), lines[0], fill=colour, font=font)
        top = height // 2
        draw.text((6, top), left_label, fill=(255, 255, 255), font=font)
        draw.text((x1 + 6, top), right_label, fill=(255, 255, 255), font=font)
        _level_boxes(draw, x0, x1, top, height - 4, font)
        return np.asarray(strip)
    for k, text in enumerate(lines):
        draw.text((6, 3 + k * line), text, fill=colour, font=font)
    top = 3 + line * len(lines)
    _level_boxes(draw, 6, width - 6, top, top + line - 2, font)
    for k, (left, right) in enumerate(labels):
        y = top + line * (k + 1)
        draw.text((6, y), left, fill=(255, 255, 255), font=font)
        draw.text((max(2, width - 6 - measure(right)), y), right, fill=(255, 255, 255), font=font)
    return np.asarray(strip)


def _level_boxes(draw, x0, x1, top, bottom, font):
    """The 11 level colours side by side in ``[x0, x1]``, numbered where the numbers fit."""
    step = (x1 - x0) / NUM_LEVELS
    numbered = step - 2 >= font.getlength("10") + 2
    for k in range(NUM_LEVELS):
        a, b = x0 + k * step, x0 + (k + 1) * step - 2
        draw.rectangle([a, top, b, bottom], fill=level_color_8bit(k))
        if numbered:
            draw.text((a + 2, top), str(k), fill=(0, 0, 0), font=font)


def wrapped(text, room, text_width):
    """``text`` broken at spaces into lines no wider than ``room`` (a single longer word keeps its own line)."""
    lines = []
    for word in text.split(" "):
        if lines and text_width(f"{lines[-1]} {word}") <= room:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
