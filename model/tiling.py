"""Placing non-overlapping 84x84 patches on an image; pure NumPy."""
import numpy as np

from .constants import PATCH_SIZE


def max_tiles(length, patch_size=PATCH_SIZE):
    """How many whole patches fit along an axis of ``length`` pixels."""
    return int(length) // patch_size


def tile_offsets(length, count, patch_size=PATCH_SIZE):
    """Start offsets of ``count`` patches spread evenly along an axis.

    The pixels left over (``length - count * patch_size``) are shared out as
    equal gaps before, between and after the patches, as the Fiji plugin does,
    so that the margins of the image are sampled as much as its centre.

    Examples
    --------
    >>> tile_offsets(200, 2).tolist()
    [10, 105]
    >>> tile_offsets(168, 2).tolist()
    [0, 84]
    """
    length, count = int(length), int(count)
    if count < 1 or count * patch_size > length:
        raise ValueError(
            f"`count`={count} patches of {patch_size} px do not fit in {length} px "
            f"(allowed: 1 to {max_tiles(length, patch_size)})")
    space = length - count * patch_size
    i = np.arange(count)
    return i * patch_size + ((i + 1) * space) // (count + 1)


def tile_grid(shape, n_rows=None, n_cols=None, patch_size=PATCH_SIZE, region=None):
    """Top-left corners of the patches covering an image of ``shape`` (rows, cols).

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(M, N)``.
    n_rows, n_cols : int, optional
        Number of patch rows / columns. Default: as many as fit, which covers the
        image except a margin of less than one patch, split evenly.
    region : (top, bottom, left, right), optional
        Lay the patches over this part of the image only (default: all of it).

    Returns
    -------
    origins : (P, 2) ndarray of int
        ``(row, col)`` of each patch's top-left pixel, in row-major order.
    grid : tuple of int
        ``(n_rows, n_cols)``.

    Examples
    --------
    >>> tile_grid((200, 300), region=(0, 200, 100, 300))[0][:2].tolist()
    [[10, 110], [10, 205]]
    """
    top, bottom, left, right = (0, int(shape[0]), 0, int(shape[1])) if region is None else map(int, region)
    rows, cols = bottom - top, right - left
    n_rows = max_tiles(rows, patch_size) if n_rows is None else int(n_rows)
    n_cols = max_tiles(cols, patch_size) if n_cols is None else int(n_cols)
    r = top + tile_offsets(rows, n_rows, patch_size)
    c = left + tile_offsets(cols, n_cols, patch_size)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1), (n_rows, n_cols)


def patch_labels(origins, shape, patch_size=PATCH_SIZE):
    """A label image numbering the patches 1..P in the order of ``origins``; 0 elsewhere.

    Patches from :func:`tile_grid` never overlap, so every patch keeps all its pixels.

    Examples
    --------
    >>> patch_labels([[0, 0], [0, 84]], (90, 170))[[0, 0, 89], [0, 90, 0]].tolist()
    [1, 2, 0]
    """
    labels = np.zeros(tuple(shape), dtype=np.int32)
    for number, (r, c) in enumerate(origins, start=1):
        labels[r:r + patch_size, c:c + patch_size] = number
    return labels
