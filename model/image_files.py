"""Reading microscope image files into 2-D planes; all file I/O of images lives here.

Every file becomes a list of :class:`Plane`: one 2-D image each, labelled with
its place in the file (``series``, ``channel``, ``z``, ``t``, where the file has
those axes). TIFF planes read lazily: :class:`LazyPlane` reads only the rows
asked for (uncompressed data straight from the file, strips and tiles decoded
one by one), so an image of any size is assessed in bounded memory.

Axes come from the file: ImageJ hyperstacks, OME-TIFF and the formats of
:mod:`model.formats` label theirs. A plain multi-page TIFF is a stack (``z``).
When the non-spatial axes cannot be told apart, :class:`ImageFileError` names
the shape and the ``axes`` option that settles it.
"""
import contextlib
import glob
import logging
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_SUFFIXES = TIFF_SUFFIXES + PLAIN_SUFFIXES

#: A single compressed block that claims to expand more than this (and beyond 256 MB) is refused before
#: decoding: deflate cannot exceed 1032:1, so such a header is damaged, and decoding it would exhaust memory.
MAX_DECODE_RATIO = 2048

#: More planes than this in one file is a damaged header (a 384-well plate of 4 channels, 50 planes and 100
#: time points has 7.7 million), and listing them would exhaust memory.
MAX_PLANES = 10_000_000

#: Labelled axes: letter in an axes string -> Plane attribute.
AXES = {"S": "series", "C": "channel", "Z": "z", "T": "t"}


class ImageFileError(ValueError):
    """A file that cannot be read as grayscale planes; the message says why."""


@dataclass
class Plane:
    """One 2-D plane of a file and where it sits in it (None for axes the file does not have)."""

    index: int
    pixels: object  # ndarray or LazyPlane
    series: int = None
    channel: int = None
    z: int = None
    t: int = None

    def labels(self):
        """``{"plane", "series", "channel", "z", "t"}`` for result tables (None where absent)."""
        return {"plane": self.index, "series": self.series, "channel": self.channel, "z": self.z, "t": self.t}


class LazyPlane:
    """A 2-D plane read on demand, by rows: ``plane[r0:r1]`` reads only those rows.

    ``shape`` and ``dtype`` are known without reading; ``np.asarray(plane)`` reads it all.
    Whatever goes wrong while reading (a truncated file, data that does not decode) is an
    :class:`ImageFileError` naming ``source``, the file.
    """

    def __init__(self, shape, dtype, read_rows, source=""):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), 2
        self._read_rows, self.source = read_rows, source

    def __getitem__(self, key):
        rows, cols = (key, slice(None)) if not isinstance(key, tuple) else (key + (slice(None),))[:2]
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            return np.asarray(self)[key]
        start, stop, _ = rows.indices(self.shape[0])
        return self._read(start, max(start, stop))[:, cols]

    def __array__(self, dtype=None, copy=None):
        data = self._read(0, self.shape[0])
        return data if dtype is None else data.astype(dtype)

    def _read(self, r0, r1):
        try:
            data = self._read_rows(r0, r1)
        except ImageFileError:
            raise
        except Exception as exc:  # every reader and decoder has its own exceptions: all mean "cannot be read"
            raise ImageFileError(describe_read_error(self.source, exc)) from None
        if data.shape[:1] != (r1 - r0,):
            raise ImageFileError(f"{self.source}: truncated file: rows {r0}-{r1} of its {self.shape[0]} are missing")
        return data

    def __len__(self):
        return self.shape[0]


def expand_inputs(inputs):
    """Files named by ``inputs``: paths, folders (their image files) or glob patterns.

    Order is kept; duplicates are dropped; a name matching nothing is returned
    as is so that the caller reports it as a failed input rather than skipping it.
    OME-Zarr folders (``*.zarr``) count as files.
    """
    from .formats import FORMAT_SUFFIXES

    suffixes = IMAGE_SUFFIXES + FORMAT_SUFFIXES
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and path.suffix.lower() not in FORMAT_SUFFIXES:
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes))
        elif any(ch in str(item) for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(item)))
            found.extend(p for p in matches if p.is_file() or p.suffix.lower() in FORMAT_SUFFIXES)
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


@contextlib.contextmanager
def open_planes(path, *, channel=None, z=None, t=None, series=None, axes=None):
    """The grayscale planes of a file, lazily read while the context is open.

    Parameters
    ----------
    path : str or Path
    channel, z, t, series : int, optional
        Keep only this index (0-based) of that axis; ignored for files without it.
    axes : str, optional
        The file's axes, e.g. ``"CZYX"``, for files that do not label theirs
        (letters C, Z, T, S for series, then YX; Q or I for "a stack").

    Raises
    ------
    ImageFileError
        Unreadable, colour, unlabelled-and-ambiguous or empty files, or a selection
        outside the file.
    """
    from .formats import FORMAT_SUFFIXES, open_format

    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise ImageFileError(f"{path}: no such file")
    if suffix not in IMAGE_SUFFIXES + FORMAT_SUFFIXES:
        raise ImageFileError(f"{path}: unsupported file type {suffix!r} "
                             f"(supported: {', '.join(IMAGE_SUFFIXES + FORMAT_SUFFIXES)})")
    selection = {"channel": channel, "z": z, "t": t, "series": series}
    with contextlib.ExitStack() as stack:
        try:
            if suffix in TIFF_SUFFIXES or (suffix in PLAIN_SUFFIXES and _holds_tiff(path)):
                # A TIFF under another name goes to the reader that checks it before decoding anything.
                source = stack.enter_context(_tiff_source(path))
            elif suffix in FORMAT_SUFFIXES:
                source = stack.enter_context(open_format(path))
            else:
                source = _plain_source(path)
            planes = list(source.planes(path, axes, selection))
        except ImageFileError:
            raise
        except Exception as exc:  # as in LazyPlane._read
            raise ImageFileError(describe_read_error(path, exc)) from None
        if not planes:
            raise ImageFileError(f"{path}: no plane matches the selection "
                                 f"{', '.join(f'{k}={v}' for k, v in selection.items() if v is not None)}")
        yield planes


def describe_read_error(path, exc):
    """What a reader's exception means for the user: the file is not an image, truncated or damaged."""
    name = type(exc).__name__
    said = (str(exc).splitlines() or [name])[0][:160]
    if name == "TiffFileError" and "not a tiff" in said.lower():
        return f"{path}: not a TIFF file (its first bytes are no TIFF header)"
    if name == "TiffFileError":
        return f"{path}: damaged TIFF file ({said})"
    if isinstance(exc, MemoryError):
        return f"{path}: damaged header: it asks for more memory than there is"
    if type(exc).__module__.split(".")[0] == "imagecodecs" or "decompress" in said.lower():
        return f"{path}: damaged or truncated file: its compressed data do not decode ({name}: {said})"
    if isinstance(exc, (EOFError, OSError)) or any(w in said for w in ("reshape", "buffer size", "truncated")):
        return f"{path}: truncated file: it holds fewer bytes than its header announces ({name}: {said})"
    if isinstance(exc, (AttributeError, KeyError, IndexError, TypeError, ZeroDivisionError, struct.error)):
        return f"{path}: damaged file: its header does not parse ({name}: {said})"
    return f"{path}: damaged or unreadable file ({name}: {said})"


def read_planes(path, **selection):
    """The planes of a file read into memory, as a list of ``(index, 2-D ndarray)``."""
    with open_planes(path, **selection) as planes:
        return [(p.index, np.asarray(p.pixels)) for p in planes]


class PlaneSource:
    """A file's planes: ``axes`` (e.g. ``"TZCYX"``), ``shape``, and ``plane(position)`` -> 2-D array or LazyPlane."""

    def __init__(self, axes, shape, plane):
        self.axes, self.shape, self._plane = axes, tuple(shape), plane

    def planes(self, path, axes_override, selection):
        if min(self.shape[-2:], default=0) < 1:
            raise ImageFileError(f"{path}: damaged or empty file: its planes are {'x'.join(map(str, self.shape[-2:]))} "
                                 "pixels")
        if math.prod(self.shape[:-2]) > MAX_PLANES:
            raise ImageFileError(f"{path}: damaged header: it claims {math.prod(self.shape[:-2]):,} planes")
        axes = _checked_axes(path, axes_override or self.axes, self.shape)
        stack_axes = axes[:-2]
        for index, position in enumerate(np.ndindex(*self.shape[:-2])):
            labels = {AXES[a]: int(i) for a, i in zip(stack_axes, position) if a in AXES}
            if any(selection[k] is not None and k in labels and labels[k] != selection[k] for k in selection):
                continue
            pixels = self._plane(position)
            if isinstance(pixels, LazyPlane):
                pixels.source = pixels.source or str(path)
            yield Plane(index, pixels, **labels)
        for key, value in selection.items():
            letter = next(a for a, name in AXES.items() if name == key)
            if value is not None and letter in stack_axes and not 0 <= value < self.shape[axes.index(letter)]:
                raise ImageFileError(f"{path}: {key} {value} is outside 0..{self.shape[axes.index(letter)] - 1}")


def _checked_axes(path, axes, shape):
    """``axes`` with a lone unlabelled stack axis read as z; an error for anything it cannot tell apart."""
    axes = axes.upper()
    known = [a for a in axes if a in AXES or a in "YX"]
    if len(axes) != len(shape) or not axes.endswith("YX") or len(set(known)) != len(known):
        raise ImageFileError(f"{path}: axes {axes!r} do not fit its shape {tuple(shape)} "
                             "(one letter per axis, ending in YX, each letter once)")
    unknown = [a for a in axes[:-2] if a not in AXES]
    if not unknown:
        return axes
    if len(unknown) == 1 and "Z" not in axes:
        return axes.replace(unknown[0], "Z")  # a plain stack: planes of a focal series or a time series
    labelled = ", ".join(f"{a}={n}" for a, n in zip(axes, shape))
    raise ImageFileError(
        f"{path}: cannot tell its axes apart (shape {tuple(shape)}, axes {labelled}; "
        f"{len(unknown)} unlabelled). Save it as an ImageJ hyperstack or OME-TIFF, or give the axes, "
        f"e.g. --axes {_example_axes(len(shape))} (C channel, Z focus, T time, S series)")


def _example_axes(ndim):
    return {3: "ZYX", 4: "CZYX", 5: "TCZYX"}.get(ndim, "TCZYX")


# --- TIFF -----------------------------------------------------------------------------------

def _holds_tiff(path):
    with open(path, "rb") as f:
        return f.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _check_page_chain(path):
    """Follow the chain of a TIFF's page headers (IFDs): a chain that loops back on itself made tifffile
    read pages forever (found by the fuzzer); one that leaves the file is damaged too."""
    with open(path, "rb") as f:
        head = f.read(16)
        size = os.fstat(f.fileno()).st_size
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return  # not a TIFF: tifffile says so in its own words
        order = "<" if head[:2] == b"II" else ">"
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        count_format, entry_size, offset_format = ("Q", 20, "Q") if big else ("H", 12, "I")
        count_size, offset_size = struct.calcsize(count_format), struct.calcsize(offset_format)
        offset = struct.unpack(order + offset_format, head[8:16] if big else head[4:8])[0]
        seen = set()
        while offset:
            if offset in seen:
                raise ImageFileError(f"{path}: damaged TIFF file: its pages form a loop")
            if offset + count_size > size or len(seen) > size // (count_size + offset_size):
                raise ImageFileError(f"{path}: truncated file (or a damaged header): a page header lies past its end")
            seen.add(offset)
            f.seek(offset)
            entries = struct.unpack(order + count_format, f.read(count_size))[0]
            f.seek(offset + count_size + entries * entry_size)
            link = f.read(offset_size)
            if len(link) < offset_size:
                raise ImageFileError(f"{path}: truncated file (or a damaged header): a page header lies past its end")
            offset = struct.unpack(order + offset_format, link)[0]


@contextlib.contextmanager
def _tiff_source(path):
    import tifffile

    _check_page_chain(path)
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes, shape = series.axes, series.shape
        if "S" in axes:
            yield _tiff_samples_source(tif, series)
            return
        yield PlaneSource(axes, shape, lambda position: _lazy_tiff_plane(
            tif, series.pages[int(np.ravel_multi_index(position, shape[:-2])) if position else 0]))


def _tiff_samples_source(tif, series):
    """Series with a samples (S) axis: interleaved 8-bit colour, or a stack tifffile saved as planar RGB."""
    axes, data = series.axes, series.asarray()
    planar = axes.index("S") < len(axes) - 2
    if planar and data.dtype != np.uint8:
        # 16-bit or float "RGB" is a grayscale stack written without photometric='minisblack'.
        return PlaneSource(axes.replace("S", "Q"), data.shape, lambda position: data[position])
    if planar:
        data = np.moveaxis(data, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    return PlaneSource(axes[:-1], data.shape[:-1], lambda position: _gray_from_rgb(tif.filehandle.path,
                                                                                 data[position]))


def _lazy_tiff_plane(tif, page):
    key = page.keyframe
    if key.samplesperpixel != 1 or len(key.shape) != 2:
        raise ImageFileError(f"{tif.filehandle.path}: pages of shape {key.shape} are not grayscale planes")
    rows, cols = key.shape
    dtype = np.dtype(tif.byteorder + key.dtype.char)
    path = tif.filehandle.path
    claimed = _check_page_bounds(tif, page)
    if key.compression == 1 and page.is_contiguous:
        offset = page.dataoffsets[0]
        row_bytes = cols * dtype.itemsize

        def read_rows(r0, r1):
            data = os.pread(tif.filehandle.fileno(), (r1 - r0) * row_bytes, offset + r0 * row_bytes)
            return np.frombuffer(data, dtype).reshape(r1 - r0, cols).astype(dtype.newbyteorder("="), copy=False)
        return LazyPlane((rows, cols), dtype.newbyteorder("="), read_rows)
    if len(page.dataoffsets) == 1:  # one compressed block: decoded once, on first use
        if claimed > MAX_DECODE_RATIO * max(page.databytecounts[0], 1) and claimed > 2**28:
            raise ImageFileError(f"{path}: damaged header: it says {rows}x{cols} pixels ({_megabytes(claimed)}) "
                                 f"compressed into {_megabytes(page.databytecounts[0])}")
        cache = []

        def read_rows(r0, r1):
            if not cache:
                cache.append(page.asarray())
            return cache[0][r0:r1]
        return LazyPlane((rows, cols), key.dtype, read_rows)
    return LazyPlane((rows, cols), key.dtype, lambda r0, r1: _decode_rows(tif, page, r0, r1))


def check_intact(path):
    """Raise :class:`ImageFileError` if the TIFF at ``path`` is cut short or its header points outside
    it, from its headers alone (no pixel is decoded); other formats are not checked.

    For readers other than this module's (ImageJ's), some of which hang on such files.
    """
    import tifffile

    if Path(path).suffix.lower() not in TIFF_SUFFIXES:
        return
    try:
        _check_page_chain(path)
        with tifffile.TiffFile(path) as tif:
            for page in tif.pages:
                _check_page_bounds(tif, page)
    except ImageFileError:
        raise
    except Exception as exc:  # as in LazyPlane._read
        raise ImageFileError(describe_read_error(path, exc)) from None


def _check_page_bounds(tif, page):
    """The page's size in bytes, once its pixel data are known to lie inside the file."""
    key = page.keyframe
    path, file_size = tif.filehandle.path, tif.filehandle.size
    rows, cols = key.shape[-2:]
    claimed = int(np.prod(key.shape, dtype=np.int64)) * key.dtype.itemsize
    if key.compression == 1 and claimed > file_size:
        raise ImageFileError(f"{path}: truncated file: its header says {rows}x{cols} pixels "
                             f"({_megabytes(claimed)}), the file holds {_megabytes(file_size)}")
    ends = np.asarray(page.dataoffsets, np.int64) + np.asarray(page.databytecounts, np.int64)
    if ends.size == 0 or ends.max() > file_size:
        # Never hand a decoder data past the end: imagecodecs' LZW decoder crashed its process on such a file.
        raise ImageFileError(f"{path}: truncated file (or a damaged header): its pixel data run to "
                             f"{_megabytes(max(ends, default=0))}, the file holds {_megabytes(file_size)}")
    return claimed


def _megabytes(size):
    return f"{size / 2**20:.3g} MB"


def _decode_rows(tif, page, r0, r1):
    """Rows ``r0:r1`` of a page stored in strips or tiles, decoding only the segments they cross."""
    key = page.keyframe
    chunk_rows, chunk_cols = key.chunks[-2:] if len(key.chunks) >= 2 else (key.chunks[0], key.shape[1])
    across = key.chunked[-1] if len(key.chunked) >= 2 else 1
    out = np.zeros((r1 - r0, key.shape[1]), key.dtype)
    handle = tif.filehandle
    for chunk_row in range(r0 // chunk_rows, math.ceil(r1 / chunk_rows)):
        for chunk_col in range(across):
            index = chunk_row * across + chunk_col
            handle.seek(page.dataoffsets[index])
            data = handle.read(page.databytecounts[index])
            segment, (_, _, top, left, _), _ = key.decode(data, index, jpegtables=key.jpegtables)
            segment = segment[0, :, :, 0]
            lo, hi = max(r0, top), min(r1, top + segment.shape[0], key.shape[0])
            width = min(segment.shape[1], key.shape[1] - left)
            out[lo - r0:hi - r0, left:left + width] = segment[lo - top:hi - top, :width]
    return out


# --- PNG, JPEG, BMP ---------------------------------------------------------------------------

def _plain_source(path):
    import imageio.v3 as iio

    data = np.asarray(iio.imread(path))
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        data = _gray_from_rgb(path, data)
    return PlaneSource("QYX"[-data.ndim:], data.shape, lambda position: data[position])


def _gray_from_rgb(path, data):
    colour = data[..., :3]
    if (colour == colour[..., :1]).all():
        LOGGER.info("%s: RGB file with equal channels, read as grayscale", path)
        return colour[..., 0]
    raise ImageFileError(f"{path}: is a colour (RGB) image; the model needs one grayscale "
                         "channel: save the channel to assess as a grayscale image")
