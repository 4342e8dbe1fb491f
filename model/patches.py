"""The patches the model sees, read band by band, and the rule for patches with nothing to judge.

:func:`patch_rows` reads one band of rows (``image[r:r + 84]``) per patch row,
so an image that reads lazily (a memory map, a tiled TIFF) is never loaded
whole. :func:`model.predict` screens each row while it is fresh in the CPU's
cache, and :func:`rebatch` brings the patches left to judge to the model scale
straight into model calls of ``BATCH_PATCHES``: memory stays flat however large
the image, a field that is mostly background still fills each call, and only the
patches the network sees are converted whole.

Zero-filled margins
-------------------
Registration and stitching fill what lies outside the field with zeros, in whole
rows and columns along the image's edges. :func:`content_region` finds them, and
the patches are laid over the rest of the image: a patch half in the margin would
show a sharp edge that is not the sample's.

Nothing to judge
----------------
A patch with no usable signal gets a uniform distribution, hence certainty 0,
without being shown to the model, so it drops out of the whole-image result as
empty background should. A patch has nothing to judge when, on the model scale,

- fewer than 5 % of its pixels lie strictly between 0 and the full scale (it is
  constant, zero-filled, or saturated / clipped over almost all its area), or
- its spread is within twice its pixel noise (standard deviation at most
  ``2 x`` the noise estimated from neighbouring pixel differences): a constant
  level, or camera noise over an empty background with no structure to blur.

The threshold was set on real images (17 nuclear and 12 other-stain fields,
levels 0, 5 and 10): it marks about two thirds of the patches far from any
cell and none of those where cells cover a third or more of the patch.
"""
import threading

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .constants import NUM_LEVELS, PATCH_SIZE
from .scaling import check_values

#: Patches per model call: large enough to keep the network busy, small enough
#: that memory does not grow with the image.
BATCH_PATCHES = 256

#: A patch needs at least this fraction of pixels strictly inside the scale.
MIN_UNCLIPPED_FRACTION = 0.05

#: A patch whose standard deviation is at most this many times its pixel noise is flat.
NOISE_FLOOR_FACTOR = 2.0

#: For white noise of standard deviation s, the mean |difference| of neighbours is 2 s / sqrt(pi).
_NOISE_PER_MEAN_ABS_DIFF = np.sqrt(np.pi) / 2

#: Spread a constant patch shows from float32 rounding alone (0.007 counts on the 16-bit scale).
_ROUNDING = 1e-7

_PER_THREAD = threading.local()


def content_region(image, sample_rows=64):
    """``(top, bottom, left, right)`` of ``image`` without its zero-filled margins (whole zero rows / columns).

    Rows are read from each end until one holds a non-zero pixel; columns are
    judged on up to ``sample_rows`` rows spread over the rest, so a lazily read
    image is not read whole. An image with no such margins (or nothing else)
    gives its full extent.

    Examples
    --------
    >>> image = np.zeros((300, 400), np.uint16)
    >>> image[:, 150:] = 7
    >>> content_region(image)
    (0, 300, 150, 400)
    """
    rows, cols = image.shape

    def first_nonzero_row(order):
        for start in range(0, rows, PATCH_SIZE):
            stop = min(rows, start + PATCH_SIZE)
            band = np.asarray(image[start:stop] if order > 0 else image[rows - stop:rows - start])
            hits = np.flatnonzero(band.any(axis=1))
            if len(hits):
                return start + (hits[0] if order > 0 else len(band) - 1 - hits[-1])
        return None

    top = first_nonzero_row(1)
    if top is None:
        return 0, rows, 0, cols
    bottom = rows - first_nonzero_row(-1)
    sampled = np.unique(np.linspace(top, bottom - 1, min(sample_rows, bottom - top)).astype(int))
    columns = np.flatnonzero(np.any([np.asarray(image[r:r + 1])[0] != 0 for r in sampled], axis=0))
    left, right = int(columns[0]), int(columns[-1]) + 1
    if bottom - top < PATCH_SIZE or right - left < PATCH_SIZE:
        return 0, rows, 0, cols
    return int(top), int(bottom), left, right


def patch_rows(image, origins, *, max_value=None):
    """Yield ``(indices, patches)``: the patches at ``origins``, one row of patches at a time.

    Each row reads one band of the image (``image[r:r + 84]``), so memory follows
    the row, not the image; the caller regroups what it keeps with :func:`rebatch`.

    Parameters
    ----------
    image : (M, N) array_like
        A plane accepted by :func:`model.scaling.check_plane`; only the rows the
        patches cover are read.
    origins : (P, 2) ndarray of int
        Patch corners in row-major order, as from :func:`model.tiling.tile_grid`.
    max_value : float, optional
        Intensity scale override (:func:`model.scaling.check_values`).

    Yields
    ------
    indices : (B,) ndarray of int
        Positions in ``origins`` of the row's patches.
    patches : (B, 84, 84) ndarray
        The image's own pixels, values checked band by band.
    """
    origins = np.asarray(origins)
    for start, stop in _runs_of_equal_rows(origins[:, 0]):
        row = int(origins[start, 0])
        band = np.asarray(image[row:row + PATCH_SIZE])
        # Picking whole 84-pixel windows is an order of magnitude faster than gathering pixel columns.
        raw = sliding_window_view(band, PATCH_SIZE, axis=1)[:, origins[start:stop, 1]].transpose(1, 0, 2)
        check_values(raw, max_value=max_value)
        yield np.arange(start, stop), raw


def rebatch(pieces, size, *, scale=1.0, out=None):
    """Regroup a stream of ``(indices, patches)`` pieces into batches of ``size`` patches (the last may be smaller).

    Each batch is a float32 array that the pieces are multiplied by ``scale``
    into (:func:`model.scaling.scale_factor` gives the model scale's), so a piece
    is read once and never joined to another first. It is a new array, or with
    ``out`` (e.g. :func:`batch_buffer`) the first rows of ``out``, valid until
    the next batch is asked for.

    Examples
    --------
    >>> [(i.tolist(), x.tolist()) for i, x in rebatch([(np.array([0, 1]), np.array([5, 6])),
    ...                                                (np.array([3]), np.array([8]))], 2, scale=0.5)]
    [([0, 1], [2.5, 3.0]), ([3], [4.0])]
    """
    held, count = [], 0
    for piece in pieces:
        held.append(piece)
        count += len(piece[1])
        while count >= size:
            yield _first_scaled(held, size, scale, out)
            count -= size
    if count:
        yield _first_scaled(held, count, scale, out)


def _first_scaled(held, size, scale, out):
    """The first ``size`` patches of the ``held`` pieces, multiplied into one batch; ``held`` keeps the rest."""
    at, batch, filled = np.empty(size, np.intp), None if out is None else out[:size], 0
    while filled < size:
        indices, items = held[0]
        if batch is None:
            batch = np.empty((size,) + items.shape[1:], np.float32)
        take = min(size - filled, len(items))
        np.multiply(items[:take], scale, out=batch[filled:filled + take], dtype=np.float32)
        at[filled:filled + take] = indices[:take]
        filled += take
        if take == len(items):
            held.pop(0)
        else:
            held[0] = (indices[take:], items[take:])
    return at, batch


def batch_buffer(size):
    """A float32 ``(size, 84, 84)`` array kept by this thread for :func:`rebatch`'s ``out``, reused image after image.

    A new array of that size is new memory to the operating system, which then
    maps it in page by page as it is first written: about 1,900 page faults per
    2048x2048 field with cells in every patch, against 6 with this buffer. Larger batches than
    :data:`BATCH_PATCHES` get a new array, so a thread keeps at most 7 MiB.
    """
    if size > BATCH_PATCHES:
        return np.empty((size, PATCH_SIZE, PATCH_SIZE), np.float32)
    buffer = getattr(_PER_THREAD, "batch", None)
    if buffer is None or len(buffer) < size:
        buffer = _PER_THREAD.batch = np.empty((size, PATCH_SIZE, PATCH_SIZE), np.float32)
    return buffer[:size]


def _runs_of_equal_rows(rows):
    """``(start, stop)`` index ranges of consecutive equal values (the patch rows)."""
    breaks = np.flatnonzero(np.diff(rows)) + 1
    edges = np.concatenate([[0], breaks, [len(rows)]])
    return zip(edges[:-1], edges[1:])


def nothing_to_judge(patches, scale=1.0):
    """Which patches have no usable signal (see the module docs); ``(B,)`` bool.

    Parameters
    ----------
    patches : (B, 84, 84) ndarray
        On the model scale (0 = black, 1 = full scale) once multiplied by ``scale``.
    scale : float
        Factor to the model scale, for patches still in the image's own pixels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> flat = np.zeros((84, 84))
    >>> noise = 0.01 + 0.001 * rng.standard_normal((84, 84))
    >>> cell = noise + 0.05 * (np.hypot(*np.mgrid[-42:42, -42:42]) < 12)
    >>> nothing_to_judge(np.stack([flat, noise, cell])).tolist()
    [True, True, False]
    """
    # Every third row (28 x 84 pixels) measures spread, noise and clipping well, at a third of the cost.
    sample = np.multiply(np.asarray(patches)[:, ::3, :], np.float32(scale), dtype=np.float32, order="C")
    count = sample.shape[1] * sample.shape[2]
    unclipped = np.count_nonzero((sample > 0) & (sample < 1), axis=(1, 2)) / count
    centred = sample - sample.mean(axis=(1, 2), keepdims=True)
    spread = np.sqrt(np.einsum("ijk,ijk->i", centred, centred) / count)
    noise = np.abs(np.diff(sample, axis=2)).mean(axis=(1, 2)) * _NOISE_PER_MEAN_ABS_DIFF
    return (unclipped < MIN_UNCLIPPED_FRACTION) | (spread <= NOISE_FLOOR_FACTOR * noise + _ROUNDING)


#: The distribution of a patch with nothing to judge: every level equally likely (certainty 0).
UNIFORM = np.full(NUM_LEVELS, 1.0 / NUM_LEVELS)
