"""Reading files into labelled planes: hyperstacks, formats, lazy rows, clear errors."""
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from model.image_files import ImageFileError, LazyPlane, open_planes, read_planes

from . import microscope_files
from .conftest import ROOT, require_host

RNG = np.random.default_rng(0)
TZCYX = RNG.integers(0, 4000, (2, 3, 2, 100, 120)).astype(np.uint16)


def labelled(path, **selection):
    with open_planes(path, **selection) as planes:
        return [((p.series, p.channel, p.z, p.t), np.asarray(p.pixels)) for p in planes]


def test_imagej_hyperstack_planes_carry_channel_and_z(tmp_path):
    zcyx = TZCYX[0]
    tifffile.imwrite(tmp_path / "h.tif", zcyx, imagej=True, metadata={"axes": "ZCYX"})
    planes = labelled(tmp_path / "h.tif")
    assert [labels for labels, _ in planes] == [(None, c, z, None) for z in range(3) for c in range(2)]
    for (_, c, z, _), pixels in planes:
        np.testing.assert_array_equal(pixels, zcyx[z, c])


def test_ome_tiff_axes_come_from_the_file(tmp_path):
    tifffile.imwrite(tmp_path / "o.ome.tif", TZCYX[:, :, 0], ome=True, metadata={"axes": "TZYX"})
    assert [labels for labels, _ in labelled(tmp_path / "o.ome.tif")] == [
        (None, None, z, t) for t in range(2) for z in range(3)]


def test_selection_keeps_one_channel_z_or_time(tmp_path):
    tifffile.imwrite(tmp_path / "h.tif", TZCYX, imagej=True, metadata={"axes": "TZCYX"})
    assert [labels for labels, _ in labelled(tmp_path / "h.tif", channel=1, t=0)] == [
        (None, 1, z, 0) for z in range(3)]
    with pytest.raises(ImageFileError, match="channel 2 is outside 0..1"):
        labelled(tmp_path / "h.tif", channel=2)


PLANAR_RGB = pytest.mark.filterwarnings("ignore:.*stored as RGB with separate component planes")


@PLANAR_RGB
def test_unlabelled_axes_are_a_clear_error_that_names_the_option(tmp_path):
    # tifffile stores an unlabelled (2, 3, Y, X) uint16 array as "planar RGB": it is not colour.
    tifffile.imwrite(tmp_path / "u.tif", TZCYX[0].transpose(1, 0, 2, 3))
    with pytest.raises(ImageFileError, match=r"shape \(2, 3, 100, 120\).*--axes CZYX"):
        labelled(tmp_path / "u.tif")
    planes = labelled(tmp_path / "u.tif", axes="CZYX")
    assert [labels for labels, _ in planes] == [(None, c, z, None) for c in range(2) for z in range(3)]


@PLANAR_RGB
def test_a_plain_multipage_stack_is_a_z_stack(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", TZCYX[0, :, 0])  # (3, Y, X) uint16, saved as planar "RGB"
    assert [labels for labels, _ in labelled(tmp_path / "s.tif")] == [(None, None, z, None) for z in range(3)]


def test_true_colour_is_still_refused(tmp_path):
    colour = RNG.integers(0, 255, (100, 120, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", colour, photometric="rgb")
    with pytest.raises(ImageFileError, match="colour"):
        labelled(tmp_path / "c.tif")


@pytest.mark.parametrize("storage", [{}, {"compression": "lzw"}, {"tile": (256, 256), "compression": "zlib"}])
def test_tiff_planes_read_only_the_rows_asked_for(tmp_path, storage):
    image = RNG.integers(0, 65535, (1500, 1300)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", image, **storage)
    with open_planes(tmp_path / "big.tif") as planes:
        plane = planes[0].pixels
        assert isinstance(plane, LazyPlane) and plane.shape == image.shape and plane.dtype == np.uint16
        np.testing.assert_array_equal(plane[700:784], image[700:784])
        np.testing.assert_array_equal(plane[1450:1600], image[1450:])
        np.testing.assert_array_equal(np.asarray(plane), image)


FORMATS = {
    "nd2": ("nd2", microscope_files.write_nd2, "t.nd2"),
    "czi": ("pylibCZIrw", microscope_files.write_czi, "t.czi"),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_nd2_and_czi_planes(tmp_path, name):
    module, write, filename = FORMATS[name]
    require_host(module, f"the {name} extra")
    write(tmp_path / filename, TZCYX)
    planes = labelled(tmp_path / filename)
    assert len(planes) == 12
    assert {labels for labels, _ in planes} == {(None, c, z, t) for t in range(2) for z in range(3) for c in range(2)}
    for (_, c, z, t), pixels in planes:
        np.testing.assert_array_equal(pixels, TZCYX[t, z, c])


def test_lif_series_are_labelled(tmp_path):
    require_host("readlif", "the lif extra")
    second = TZCYX[:1, :2, :1, :90, :110]
    microscope_files.write_lif(tmp_path / "t.lif", [TZCYX, second])
    planes = labelled(tmp_path / "t.lif")
    assert len(planes) == 12 + 2
    for (series, c, z, t), pixels in planes:
        np.testing.assert_array_equal(pixels, (TZCYX, second)[series][t, z, c])
    assert [labels for labels, _ in labelled(tmp_path / "t.lif", series=1)] == [(1, 0, 0, 0), (1, 0, 1, 0)]


def test_ome_zarr_axes_come_from_its_metadata(tmp_path):
    require_host("zarr", "the ome-zarr extra")
    czyx = TZCYX[0].transpose(1, 0, 2, 3)
    microscope_files.write_ome_zarr(tmp_path / "t.zarr", czyx)
    planes = labelled(tmp_path / "t.zarr")
    assert [labels for labels, _ in planes] == [(None, c, z, None) for c in range(2) for z in range(3)]
    for (_, c, z, _), pixels in planes:
        np.testing.assert_array_equal(pixels, czyx[c, z])


def test_a_missing_reader_names_the_extra_to_install(tmp_path):
    microscope_files.write_lif(tmp_path / "t.lif", [TZCYX[:1, :1, :1]])
    code = ("import sys; sys.modules['readlif'] = None\n"  # as if the lif extra were not installed
            "from model.image_files import read_planes\n"
            f"read_planes({str(tmp_path / 't.lif')!r})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "needs the `lif` extra: pip install 'microscope-focus-quality[lif]'" in proc.stderr


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(ImageFileError, match="no such file"):
        read_planes(tmp_path / "nothing.tif")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageFileError, match="unsupported file type '.txt'"):
        read_planes(tmp_path / "notes.txt")
