"""Microscope formats beyond TIFF, read through maintained Python readers installed as extras.

=========  ===========================  =====================  =============================
suffix     format                       reader (PyPI)          extra
=========  ===========================  =====================  =============================
``.nd2``   Nikon NIS-Elements           ``nd2``                ``[nd2]``
``.czi``   Zeiss ZEN                    ``pylibCZIrw`` (Zeiss) ``[czi]``
``.lif``   Leica LAS X                  ``readlif``            ``[lif]``
``.zarr``  OME-Zarr (OME-NGFF) folder   ``zarr``               ``[ome-zarr]``
=========  ===========================  =====================  =============================

Each file becomes the same :class:`model.image_files.PlaneSource` as a TIFF:
labelled axes (series, channel, z, t) and lazily read planes. A reader that
is not installed gives an :class:`~model.image_files.ImageFileError` naming the
extra to install.
"""
import contextlib
import importlib

import numpy as np

from .image_files import ImageFileError, LazyPlane, PlaneSource

FORMAT_SUFFIXES = (".nd2", ".czi", ".lif", ".zarr")


def _require(module, extra, what):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImageFileError(f"reading {what} files needs the `{extra}` extra: "
                             f"pip install 'microscope-focus-quality[{extra}]'") from None


@contextlib.contextmanager
def open_format(path):
    """A :class:`PlaneSource` (or :class:`SeriesSource`) for an ND2, CZI, LIF or OME-Zarr file."""
    opener = {".nd2": _nd2, ".czi": _czi, ".lif": _lif, ".zarr": _ome_zarr}[path.suffix.lower()]
    with opener(path) as source:
        yield source


class SeriesSource:
    """Several independent images in one file (LIF series), each a PlaneSource; planes labelled by series."""

    def __init__(self, sources):
        self.sources = sources

    def planes(self, path, axes_override, selection):
        index = 0
        for number, source in enumerate(self.sources):
            if selection["series"] not in (None, number):
                continue
            for plane in source.planes(path, axes_override, {**selection, "series": None}):
                plane.index, plane.series = index, number
                index += 1
                yield plane


def _cached_plane(shape, dtype, read):
    """A LazyPlane for readers that decode whole planes: decoded once, on first use."""
    cache = []

    def read_rows(r0, r1):
        if not cache:
            cache.append(np.asarray(read()))
        return cache[0][r0:r1]

    return LazyPlane(shape, dtype, read_rows)


@contextlib.contextmanager
def _nd2(path):
    nd2 = _require("nd2", "nd2", "Nikon ND2")
    with nd2.ND2File(path) as f:
        sizes = dict(f.sizes)
        if sizes.get("S", 1) > 1:
            raise ImageFileError(f"{path}: is a colour (RGB) ND2 file; the model needs one grayscale channel")
        sizes.pop("S", None)
        axes = "".join({"P": "S"}.get(a, a) for a in sizes)  # ND2 positions are our series
        data = f.to_dask().reshape(tuple(sizes.values()))
        yield PlaneSource(axes, data.shape, lambda position: _cached_plane(
            data.shape[-2:], data.dtype, lambda: data[position].compute()))


@contextlib.contextmanager
def _czi(path):
    pyczi = _require("pylibCZIrw.czi", "czi", "Zeiss CZI")
    with pyczi.open_czi(str(path)) as doc:
        box = doc.total_bounding_box
        axes = "".join(a for a in "TCZ" if a in box)
        shape = tuple(box[a][1] - box[a][0] for a in axes)
        x0, x1 = box["X"]
        y0, y1 = box["Y"]
        kind = doc.get_channel_pixel_type(0)
        if not kind.startswith("Gray"):
            raise ImageFileError(f"{path}: has {kind} pixels; the model needs one grayscale channel")

        def plane(position):
            where = {a: box[a][0] + i for a, i in zip(axes, position)}
            first = doc.read(plane=where, roi=(x0, y0, x1 - x0, 1))
            # Only the rows asked for are read: CZI reads a region of interest.
            return LazyPlane((y1 - y0, x1 - x0), first.dtype, lambda r0, r1: doc.read(
                plane=where, roi=(x0, y0 + r0, x1 - x0, r1 - r0))[..., 0])

        yield PlaneSource(axes + "YX", shape + (y1 - y0, x1 - x0), plane)


@contextlib.contextmanager
def _lif(path):
    readlif = _require("readlif.reader", "lif", "Leica LIF")
    lif = readlif.LifFile(str(path))
    sources = []
    for image in lif.get_iter_image():
        width, height, depth, times, _ = image.dims
        shape = (times, image.channels, depth, height, width)
        dtype = np.uint8 if image.bit_depth[0] <= 8 else np.uint16
        sources.append(PlaneSource("TCZYX", shape, lambda position, image=image, dtype=dtype: _cached_plane(
            (image.dims[1], image.dims[0]), dtype,
            lambda: np.asarray(image.get_frame(z=position[2], t=position[0], c=position[1])))))
    yield SeriesSource(sources)


@contextlib.contextmanager
def _ome_zarr(path):
    zarr = _require("zarr", "ome-zarr", "OME-Zarr")
    group = zarr.open_group(str(path), mode="r")
    attributes = group.attrs.asdict()
    metadata = attributes.get("ome", attributes)  # NGFF 0.5 nests its metadata under "ome"
    if "multiscales" not in metadata:
        raise ImageFileError(f"{path}: is not an OME-Zarr image (no multiscales metadata)")
    multiscale = metadata["multiscales"][0]
    names = [a["name"] if isinstance(a, dict) else a for a in multiscale["axes"]]
    axes = "".join({"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}.get(n.lower(), "Q") for n in names)
    array = group[multiscale["datasets"][0]["path"]]  # the full-resolution level
    yield PlaneSource(axes, array.shape, lambda position: LazyPlane(
        array.shape[-2:], array.dtype, lambda r0, r1: np.asarray(array[position + (slice(r0, r1),)])))
