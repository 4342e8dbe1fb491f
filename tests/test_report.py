"""`focus-quality report`: plate maps, wells.csv and the re-imaging list, opened in a real browser."""
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model.overlay import level_color_8bit
from model.report_page import WELL_SIDE
from model.plate_layout import compile_patterns, locate, parse_well, plate_format, row_letters

from .browser import open_page
from .conftest import IN_FOCUS, OUT_OF_FOCUS, ROOT, SAMPLES

HFF = SAMPLES / "hff_s17_infocus.tif"

#: A plate of real images: wells B02 (two of three sites out of focus) and C07 lost focus.
PLATE = {"P1_A01_s1_w1.tif": IN_FOCUS, "P1_A01_s2_w1.tif": IN_FOCUS, "P1_B02_s1_w1.tif": OUT_OF_FOCUS,
         "P1_B02_s2_w1.tif": OUT_OF_FOCUS, "P1_B02_s3_w1.tif": IN_FOCUS, "P1_C07_s1_w1.tif": OUT_OF_FOCUS,
         "P1_D10_s1_w1.tif": HFF, "P1_H12_s1_w1.tif": HFF, "stray_name.tif": HFF}


@pytest.mark.parametrize("name, expected", [
    ("Plate1_B02_s3_w2A1B2C3D4-1234-5678-9ABC-DEF012345678.tif", ("Plate1", "B02", "3", "2")),  # MetaXpress
    ("MyPlate_P24_s1_w1.TIF", ("MyPlate", "P24", "1", "1")),
    ("MyPlate_AF48_w3.tif", ("MyPlate", "AF48", "", "3")),  # 1536 wells, one site
    ("bbbc006_a01_s1_w1_infocus.tif", ("bbbc006", "A01", "1", "1")),  # BBBC006's lower-case ImageXpress names
    ("Screen7/r02c05f03p01-ch2sk1fk1fl1.tiff", ("Screen7", "B05", "3", "2")),  # Opera / Operetta Phenix
    ("P3/AssayPlate_Greiner_#655090_B03_T0001F002L01A01Z01C01.tif", ("P3", "B03", "2", "1")),  # CellVoyager
])
def test_instrument_names(name, expected):
    place = locate(name, compile_patterns())
    assert (place.plate, place.well, place.site, place.channel) == expected


def test_names_of_no_instrument_are_not_placed():
    for name in ("hff_s17_infocus.tif", "image_0001.tif", "B02.tif"):
        assert locate(name, compile_patterns()) is None


def test_a_pattern_of_ones_own():
    patterns = compile_patterns(r"(?P<plate>exp\d+)-(?P<row>\d+)-(?P<column>\d+)-f(?P<site>\d+)")
    place = locate("/data/exp12-3-11-f04.png", patterns)
    assert (place.plate, place.well, place.site) == ("exp12", "C11", "4")
    with pytest.raises(ValueError, match="must name the group `well`"):
        compile_patterns(r"(?P<site>\d+)")
    with pytest.raises(ValueError, match="not a regular expression"):
        compile_patterns(r"(?P<well>[A-P")


def test_wells_rows_and_plate_formats():
    assert parse_well("b02") == (2, 2) and parse_well("AF48") == (32, 48)
    assert [row_letters(r) for r in (1, 16, 26, 27, 32)] == ["A", "P", "Z", "AA", "AF"]
    assert plate_format([(8, 12)]) == 96 and plate_format([(9, 1)]) == 384 and plate_format([(17, 2)]) == 1536


@pytest.fixture(scope="module")
def plate_report(tmp_path_factory):
    base = tmp_path_factory.mktemp("plate")
    folder = base / "P1"
    folder.mkdir()
    for name, source in PLATE.items():
        shutil.copy(source, folder / name)
    (folder / "P1_E05_s1_w1.tif").write_bytes(HFF.read_bytes()[:3000])  # a file cut short in the copy
    run = [sys.executable, "-m", "model"]
    predicted = subprocess.run(run + ["predict", str(folder), "-o", str(base / "out"), "--no-progress"],
                               capture_output=True, text=True, cwd=base, timeout=600)
    assert predicted.returncode == 1, predicted.stderr  # 1: one file could not be assessed
    report = subprocess.run(run + ["report", str(base / "out")], capture_output=True, text=True, cwd=base,
                            timeout=600)
    assert report.returncode == 0, report.stderr
    return base, report.stdout


def read_wells(path):
    with open(path, newline="") as fd:
        return {row["well"]: row for row in csv.DictReader(fd)}


def test_wells_csv_and_the_reimaging_list(plate_report):
    base, stdout = plate_report
    wells = read_wells(base / "out" / "wells.csv")
    assert sorted(wells) == ["A01", "B02", "C07", "D10", "E05", "H12"]
    assert {w for w, row in wells.items() if row["lost_focus"] == "1"} == {"B02", "C07"}
    assert wells["B02"]["images"] == "3" and float(wells["B02"]["in_focus_fraction"]) == pytest.approx(1 / 3, abs=1e-3)
    assert float(wells["B02"]["median_expected_level"]) > 7 and float(wells["A01"]["median_expected_level"]) < 2.5
    assert wells["E05"]["errors"] == "1" and wells["E05"]["median_expected_level"] == ""
    assert {row["plate"] for row in wells.values()} == {"P1"}
    listed = (base / "out" / "out_of_focus.txt").read_text().splitlines()
    assert sorted(Path(p).name for p in listed) == ["P1_B02_s1_w1.tif", "P1_B02_s2_w1.tif", "P1_C07_s1_w1.tif"]
    assert "wells out of focus: B02, C07" in stdout and "1 names matched no plate pattern" in stdout


def test_the_page_in_a_browser(plate_report):
    base, _ = plate_report
    page = base / "out" / "report.html"
    artifacts = Path(os.environ.get("FOCUS_QUALITY_ARTIFACTS", base / "artifacts")).resolve() / "report"
    artifacts.mkdir(parents=True, exist_ok=True)
    dom, console = open_page(page.as_uri() + "#" + "P1%7C1%7CB02", screenshot=artifacts / "plate_report.png")
    assert console == [], console
    assert 'data-ready="yes"' in dom and re.search(r'<pre id="js-errors">\s*</pre>', dom)
    assert "Plate P1, channel 1: wells B02, C07 out of focus; 3 images to re-image" in dom
    wells = read_wells(base / "out" / "wells.csv")
    drawn = {well: (fill, float(x), float(y)) for well, fill, x, y in re.findall(
        r'<g class="well[^"]*" data-key="[^"]*" data-well="(\w+)" data-state="\w+" data-fill="(#\w+)">'
        r'<title>\w+</title><rect class="frame" x="([\d.]+)" y="([\d.]+)"', dom)}
    assert sorted(drawn) == sorted(wells)  # the wells imaged, and no others
    side = WELL_SIDE[96]
    for name, row in wells.items():
        fill, x, y = drawn[name]
        # where wells.csv says: its column and row on the 96-well grid, 22 px of row letters and 14 of numbers
        assert (x, y) == (22 + (int(row["column"]) - 1) * side + 1, 14 + (int(row["row"]) - 1) * side + 1), name
        if row["median_expected_level"]:
            assert fill == "#%02x%02x%02x" % level_color_8bit(float(row["median_expected_level"]))
    assert dom.count('class="empty-well"') == 96 - len(wells)
    assert dom.count('class="site"') == 2 + 3  # the sites of the wells with more than one image: A01, B02
    # The address opened well B02: its panel lists its three images and links their annotated PNGs.
    panel = dom[dom.index('id="well-panel"'):dom.index("</aside>")]
    assert "P1 · channel 1 · well B02" in panel and panel.count("<img") == 3
    assert "data:image/jpeg;base64," in dom  # the gallery's thumbnails travel inside the page
    assert "http://" not in dom.replace("http://www.w3.org", "") and "https://" not in dom
    assert (artifacts / "plate_report.png").stat().st_size > 10000


def test_a_cellprofiler_image_csv(tmp_path):
    """Image.csv columns as CellProfiler exports them, Metadata_Well first, file names otherwise."""
    header = ["ImageNumber", "FileName_DNA", "PathName_DNA", "Metadata_Plate", "Metadata_Well", "Metadata_Site",
              "ImageFocus_Score_DNA", "ImageFocus_ExpectedLevel_DNA", "ImageFocus_InFocus_DNA",
              "ImageFocus_PatchCount_DNA"]
    rows = [[1, "a.tif", "/x", "PL9", "B03", "1", 10, 8.9, 0, 48], [2, "b.tif", "/x", "PL9", "B03", "2", 1, 0.9, 1, 48],
            [3, "c.tif", "/x", "PL9", "G11", "1", "nan", "nan", "nan", 0]]
    with open(tmp_path / "Image.csv", "w", newline="") as fd:
        csv.writer(fd).writerows([header, *rows])
    proc = subprocess.run([sys.executable, "-m", "model", "report", str(tmp_path / "Image.csv"), "-o",
                           str(tmp_path / "qc")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wells = read_wells(tmp_path / "qc" / "wells.csv")
    assert sorted(wells) == ["B03", "G11"] and wells["B03"]["channel"] == "DNA"
    assert wells["B03"]["in_focus_fraction"] == "0.5" and wells["G11"]["errors"] == "1"
    assert (tmp_path / "qc" / "out_of_focus.txt").read_text() == "/x/a.tif\n"


def test_not_a_results_table(tmp_path):
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "model", "report", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and "neither" in proc.stderr and "Traceback" not in proc.stderr
