"""Checking an input image and bringing it to the model's intensity scale.

The model was trained on raw camera counts divided by 65535 (the 16-bit full
scale). The rule, by input type:

=============================  =================================================
input                          what the model sees
=============================  =================================================
``uint8``                      ``x / 255`` (8-bit data spans the full scale, as
                               CellProfiler and ImageJ treat it)
other integers (``uint16``…)   ``x / 65535``: raw counts; must lie in 0..65535
float                          ``x`` as is: already divided by the bit depth's
                               maximum (CellProfiler's convention); must lie in [0, 1]
any, with ``max_value=v``      ``x / v``; the result must lie in [0, 1]
=============================  =================================================

Hosts that hand over pixels already divided by the acquisition's full scale
(CellProfiler's floats with ``Image.scale``, e.g. 4095 for 12-bit data) get the
raw-count scale back through :func:`max_value_for_scale`.
"""
import numpy as np

from .constants import FULL_SCALE_COUNTS, PATCH_SIZE


class ImageError(ValueError):
    """An image the model cannot be run on; the message says why and what to do.

    The message calls the image `image` and advises Python callers (:data:`MAX_VALUE_ADVICE`);
    hosts put it in their users' words with :func:`in_host_words`.
    """


#: What :func:`check_values` advises for float pixels beyond [0, 1], in a Python caller's words.
MAX_VALUE_ADVICE = "Pass max_value (e.g. 65535 if the values are raw camera counts)."


def in_host_words(message, subject, max_value_advice=MAX_VALUE_ADVICE):
    """An :class:`ImageError` message as a host shows it: ``subject`` (a file, an image title) for
    `image`, and ``max_value_advice`` (a command-line option, a dialog field) for :data:`MAX_VALUE_ADVICE`
    (by default kept, for a caller that words it later).

    Examples
    --------
    >>> in_host_words("`image` values span 0..4000, outside 0..1. " + MAX_VALUE_ADVICE, "a.tif",
    ...               "Pass --max-value 65535 if the values are raw camera counts.")
    'a.tif values span 0..4000, outside 0..1. Pass --max-value 65535 if the values are raw camera counts.'
    """
    return str(message).replace("`image`", str(subject)).replace(MAX_VALUE_ADVICE, max_value_advice)


def check_plane(image):
    """``image`` after checking it is one usable 2-D plane; its pixel values are not read.

    Arrays that read lazily (a memory map, a zarr array, :class:`model.image_files.LazyPlane`)
    stay lazy; anything else is turned into an ndarray. Values (NaN, range) are checked
    by :func:`scale_checked` on the pixels the model sees.
    """
    if _is_array_like(image):
        arr = image
    else:
        try:
            arr = np.asarray(image)
        except Exception as exc:  # ragged lists and the like
            raise ImageError(f"`image` cannot be read as an array: {exc}") from None
    dtype = np.dtype(arr.dtype)
    if dtype == bool or dtype.kind not in "uif":
        raise ImageError(f"`image` has data type {dtype}; expected integer or float pixels")
    shape = tuple(arr.shape)
    if len(shape) == 3 and shape[-1] in (3, 4):
        raise ImageError(
            f"`image` looks like an RGB{'A' if shape[-1] == 4 else ''} image (shape {shape}); "
            "the model needs one grayscale channel: convert it or pick a channel")
    if len(shape) != 2:
        raise ImageError(
            f"`image` has {len(shape)} dimensions (shape {shape}); expected one 2-D plane. "
            "For a z-stack or time series choose a plane, or use predict_planes()")
    if 0 in shape:
        raise ImageError(f"`image` is empty (shape {shape})")
    if min(shape) < PATCH_SIZE:
        raise ImageError(
            f"`image` is {shape[1]} px wide and {shape[0]} px high, smaller than one {PATCH_SIZE}x{PATCH_SIZE} patch")
    return arr


def _is_array_like(image):
    return all(hasattr(image, name) for name in ("shape", "dtype", "__getitem__"))


def to_model_scale(image, *, max_value=None):
    """Check a 2-D image and scale it as the model expects (see the module docs).

    Parameters
    ----------
    image : (M, N) array_like
        One grayscale plane, at least 84x84.
    max_value : float, optional
        Divide by this instead of the default for the data type; e.g. 65535 for
        a float image holding raw counts.

    Returns
    -------
    (M, N) ndarray of float32 in [0, 1]

    Raises
    ------
    ImageError
        For anything but one finite grayscale plane of at least 84x84 whose
        values fit the scale rule.
    """
    return scale_checked(np.asarray(check_plane(image)), max_value=max_value)


def scale_rule(dtype, max_value=None):
    """``(divisor, description)`` of the scale rule for pixels of ``dtype``."""
    dtype = np.dtype(dtype)
    if max_value is not None:
        if not np.isfinite(max_value) or max_value <= 0:
            raise ImageError(f"`max_value` must be a positive number, got {max_value!r}")
        return float(max_value), f"max_value={max_value:g}"
    if dtype == np.uint8:
        return 255.0, "8-bit data is divided by 255"
    if dtype.kind in "ui":
        return FULL_SCALE_COUNTS, "integer data are raw counts divided by 65535"
    return 1.0, "float data must already be divided by the bit depth's maximum"


def scale_checked(arr, *, max_value=None):
    """Pixels of a plane :func:`check_plane` accepted, on the model scale (float32, same shape).

    Raises :class:`ImageError` as :func:`check_values` does.
    """
    check_values(arr, max_value=max_value)
    return np.multiply(arr, scale_factor(arr.dtype, max_value), dtype=np.float32, order="C")


def scale_factor(dtype, max_value=None):
    """The float32 factor that brings pixels of ``dtype`` to the model scale (the rule above)."""
    return np.float32(1.0 / scale_rule(dtype, max_value)[0])


def check_values(arr, *, max_value=None):
    """Check that the values of ``arr`` are finite and fit the scale rule.

    Raises :class:`ImageError` for NaN or infinite values and for values outside the
    scale rule. :func:`model.predict` calls it on each row of patches as it streams,
    and scales only the patches it sends to the network.
    """
    divisor, rule = scale_rule(arr.dtype, max_value)
    if arr.dtype in (np.uint8, np.uint16) and max_value is None:
        lo, hi = 0.0, 0.0  # in range by their type; skipping two passes matters on large images
    else:
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ImageError("`image` contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > divisor:
        hint = f" {MAX_VALUE_ADVICE}" if arr.dtype.kind == "f" and max_value is None else ""
        raise ImageError(
            f"`image` values span {lo:g}..{hi:g}, outside 0..{divisor:g} ({rule}).{hint}")


def max_value_for_scale(scale):
    """``max_value`` for pixels already divided by an acquisition full scale ``scale``.

    CellProfiler divides 12-bit data by 4095 and 16-bit data by 65535; the model
    wants raw counts / 65535, i.e. ``x / (65535 / scale)``. 8-bit data (scale
    255 or less) and an unknown scale keep the default rule (floats in [0, 1]).

    Examples
    --------
    >>> max_value_for_scale(4095.0), max_value_for_scale(255.0), max_value_for_scale(None)
    (16.003663003663004, None, None)
    """
    if scale is None or not np.isfinite(scale) or scale <= 255:
        return None
    return FULL_SCALE_COUNTS / float(scale)
