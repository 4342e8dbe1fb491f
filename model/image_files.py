"""Reading microscope image files into 2-D planes; all file I/O of images lives here."""
import glob
import logging
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = TIFF_SUFFIXES + (".png", ".jpg", ".jpeg", ".bmp")


class ImageFileError(ValueError):
    """A file that cannot be read as a grayscale image; the message says why."""


def read_planes(path):
    """The grayscale planes of an image file, as a list of ``(label, 2-D array)``.

    A single image gives one plane labelled 0. Stacks (z, time, channels, series
    of equal-size pages) give one plane per 2-D image, labelled by their index.
    RGB files whose three channels are equal (grayscale saved as RGB) are read as
    grayscale; true colour images raise :class:`ImageFileError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageFileError(f"{path}: unsupported file type {suffix!r} "
                             f"(supported: {', '.join(IMAGE_SUFFIXES)})")
    try:
        if suffix in TIFF_SUFFIXES:
            data, rgb = _read_tiff(path)
        else:
            import imageio.v3 as iio
            data = np.asarray(iio.imread(path))
            rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
    except ImageFileError:
        raise
    except Exception as exc:
        raise ImageFileError(f"{path}: cannot be read as an image ({type(exc).__name__}: {exc})") from None
    if rgb:
        data = _gray_from_rgb(path, data)
    if data.ndim < 2 or min(data.shape[-2:]) == 0:
        raise ImageFileError(f"{path}: holds no 2-D image (shape {data.shape})")
    planes = data.reshape((-1,) + data.shape[-2:])
    return list(enumerate(planes))


def _read_tiff(path):
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        rgb = "S" in series.axes
        if rgb and series.axes.index("S") != len(series.axes) - 1:
            data = np.moveaxis(data, series.axes.index("S"), -1)
    return np.asarray(data), rgb


def _gray_from_rgb(path, data):
    colour = data[..., :3]
    if (colour == colour[..., :1]).all():
        LOGGER.info("%s: RGB file with equal channels, read as grayscale", path)
        return colour[..., 0]
    raise ImageFileError(f"{path}: is a colour (RGB) image; the model needs one grayscale "
                         "channel: save the channel to assess as a grayscale image")


def expand_inputs(inputs):
    """Files named by ``inputs``: paths, folders (their image files) or glob patterns.

    Order is kept; duplicates are dropped; a name matching nothing is returned
    as is so that the caller reports it as a failed input rather than skipping it.
    """
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif any(ch in str(item) for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(item)))
            found.extend(p for p in matches if p.is_file())
            if not matches:
                found.append(path)
        else:
            found.append(path)
    seen, unique = set(), []
    for p in found:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique
