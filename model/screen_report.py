"""Screen QC: which plates and wells lost focus, from ``predict``'s results.csv or CellProfiler's Image.csv.

:func:`write_report` writes, into one folder:

- ``wells.csv``: one row per plate, channel and well;
- ``out_of_focus.txt``: the images to re-image (assessed, something to judge, not in focus), one path a line;
- ``report.html``: one self-contained page (:mod:`model.report_page`).

A well *lost focus* when fewer than half of its images with something to judge are in focus.
"""
import csv
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from .plate_layout import WellSite, compile_patterns, locate, parse_well, plate_format

WELL_COLUMNS = ["plate", "channel", "well", "row", "column", "images", "in_focus_fraction", "median_expected_level",
                "worst_expected_level", "empty_images", "errors", "lost_focus"]


@dataclass
class ImageRecord:
    """One assessed image (one plane of a file) as the report sees it."""

    path: str
    level: float = math.nan  # most probable level; NaN when not assessed or nothing to judge
    expected: float = math.nan
    in_focus: bool = False
    error: str = ""
    annotated: str = ""  # the annotated PNG, if predict wrote one and it is still there
    channel: str = ""  # predict's channel index, or CellProfiler's image name
    place: WellSite = None  # None: the name matched no pattern

    @property
    def judged(self):
        return not self.error and not math.isnan(self.expected)

    @property
    def nothing_to_judge(self):
        """Assessed, and every patch was empty (background, saturated, no structure)."""
        return not self.error and math.isnan(self.expected)

    @property
    def to_reimage(self):
        return self.judged and not self.in_focus


@dataclass
class Well:
    plate: str
    channel: str
    row: int
    column: int
    images: list = field(default_factory=list)

    @property
    def name(self):
        return WellSite(self.plate, self.row, self.column, "", self.channel).well

    @property
    def judged(self):
        return [r for r in self.images if r.judged]

    @property
    def in_focus_fraction(self):
        judged = self.judged
        return sum(r.in_focus for r in judged) / len(judged) if judged else math.nan

    @property
    def median_expected_level(self):
        judged = self.judged
        return statistics.median(r.expected for r in judged) if judged else math.nan

    @property
    def worst_expected_level(self):
        judged = self.judged
        return max(r.expected for r in judged) if judged else math.nan

    @property
    def lost_focus(self):
        return bool(self.judged) and self.in_focus_fraction < 0.5

    def row_dict(self):
        return {"plate": self.plate, "channel": self.channel, "well": self.name, "row": self.row,
                "column": self.column, "images": len(self.images),
                "in_focus_fraction": _round(self.in_focus_fraction),
                "median_expected_level": _round(self.median_expected_level),
                "worst_expected_level": _round(self.worst_expected_level),
                "empty_images": sum(r.nothing_to_judge for r in self.images),
                "errors": sum(bool(r.error) for r in self.images), "lost_focus": int(self.lost_focus)}


@dataclass
class Plate:
    """One plate in one channel: its wells by ``(row, column)`` and its format (96, 384 or 1536)."""

    plate: str
    channel: str
    wells: dict

    @property
    def size(self):
        return plate_format(self.wells)

    @property
    def lost_wells(self):
        return [w for w in self.ordered_wells() if w.lost_focus]

    def ordered_wells(self):
        return [self.wells[key] for key in sorted(self.wells)]


@dataclass
class Screen:
    """Every image of a run, placed on its plates."""

    source: str
    images: list
    plates: list

    @property
    def unplaced(self):
        return [r for r in self.images if r.place is None]

    @property
    def to_reimage(self):
        return [r for r in self.images if r.to_reimage]

    def counts(self):
        return {"images": len(self.images), "in focus": sum(r.judged and r.in_focus for r in self.images),
                "out of focus": len(self.to_reimage),
                "nothing to judge": sum(r.nothing_to_judge for r in self.images),
                "errors": sum(bool(r.error) for r in self.images), "names matching no pattern": len(self.unplaced)}

    def level_histogram(self):
        """Images per most probable level 0-10."""
        counted = Counter(int(r.level) for r in self.images if r.judged)
        return [counted.get(level, 0) for level in range(11)]


def read_screen(source, pattern=None):
    """The :class:`Screen` of a ``predict`` output folder (or its results.csv) or a CellProfiler Image.csv.

    ``pattern``: a regular expression for file names (see :mod:`model.plate_layout`), instead of
    the built-in instrument patterns. CellProfiler's ``Metadata_Plate`` / ``Metadata_Well`` /
    ``Metadata_Site`` columns, where present, take precedence over names.
    """
    source = Path(source)
    table = source / "results.csv" if source.is_dir() else source
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: run `focus-quality predict IMAGES --output {source}` first, "
                                "or give a CellProfiler Image.csv exported from the MeasureImageFocus pipeline")
    patterns = compile_patterns(pattern)
    with open(table, newline="") as fd:
        reader = csv.DictReader(fd)
        columns = reader.fieldnames or []
        from_cellprofiler = any(c.startswith("ImageFocus_Score_") for c in columns)
        if "predicted_level" in columns:
            images = [_from_predict(row, table.parent) for row in reader]
        elif from_cellprofiler:
            images = [image for row in reader for image in _from_cellprofiler(row, columns)]
        else:
            raise ValueError(f"{table} is neither a `focus-quality predict` results.csv nor a CellProfiler "
                             "Image.csv with MeasureImageFocus columns (ImageFocus_Score_<image>)")
    for image in images:
        if image.place is None:
            image.place = locate(image.path, patterns)
        if image.place is not None and (from_cellprofiler or not image.place.channel):
            # CellProfiler's image names are the channels the user named; predict's plane channel
            # stands in where the file name has none
            image.place = replace(image.place, channel=image.channel)
    return Screen(str(table), images, _plates(images))


def _from_predict(row, folder):
    record = ImageRecord(row["path"], error=row.get("error") or "", channel=row.get("channel") or "",
                         annotated=_annotated_png(row.get("annotated"), folder))
    if not record.error:
        record.level, record.expected = _float(row["predicted_level"]), _float(row["expected_level"])
        record.in_focus = row.get("in_focus") == "True"
    return record


def _from_cellprofiler(row, columns):
    """One record per measured image of the image set (an image set holds one image per channel)."""
    for column in columns:
        if not column.startswith("ImageFocus_Score_"):
            continue
        name = column[len("ImageFocus_Score_"):]
        file_name = row.get(f"FileName_{name}") or f"image set {row.get('ImageNumber')}"
        record = ImageRecord(str(Path(row.get(f"PathName_{name}", "")) / file_name), channel=name)
        if _float(row.get(f"ImageFocus_PatchCount_{name}")) == 0:
            record.error = "not assessed by MeasureImageFocus (see CellProfiler's log)"
        else:
            record.level, record.expected = _float(row[column]), _float(row.get(f"ImageFocus_ExpectedLevel_{name}"))
            record.in_focus = _float(row.get(f"ImageFocus_InFocus_{name}")) == 1
        record.place = _metadata_place(row, name)
        yield record


def _metadata_place(row, channel):
    """The place CellProfiler's Metadata columns give (Plate, Well or Row + Column, Site), or None."""
    try:
        if row.get("Metadata_Well"):
            r, c = parse_well(row["Metadata_Well"])
        elif row.get("Metadata_Row") and row.get("Metadata_Column"):
            r, c = parse_well(row["Metadata_Row"] + row["Metadata_Column"])
        else:
            return None
    except ValueError:
        return None
    return WellSite(row.get("Metadata_Plate") or "plate", r, c, row.get("Metadata_Site", ""), channel)


def _plates(images):
    plates = {}
    for image in images:
        if image.place is None:
            continue
        place = image.place
        wells = plates.setdefault((place.plate, place.channel), {})
        well = wells.setdefault((place.row, place.column), Well(place.plate, place.channel, place.row, place.column))
        well.images.append(image)
    return [Plate(plate, channel, wells) for (plate, channel), wells in sorted(plates.items(), key=_natural)]


def _natural(item):
    """Plate2 before Plate10, channel 2 before channel 10."""
    (plate, channel), _ = item
    return [[(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]
            for text in (plate, channel)]


def write_report(source, output=None, pattern=None, worst=24):
    """Write ``wells.csv``, ``out_of_focus.txt`` and ``report.html`` into ``output`` (default: beside the table).

    Returns the :class:`Screen` and the paths written.
    """
    from .report_page import render

    screen = read_screen(source, pattern)
    output = Path(output) if output else Path(screen.source).parent
    output.mkdir(parents=True, exist_ok=True)
    wells_csv = output / "wells.csv"
    with open(wells_csv, "w", newline="") as fd:
        writer = csv.DictWriter(fd, WELL_COLUMNS)
        writer.writeheader()
        for plate in screen.plates:
            writer.writerows(well.row_dict() for well in plate.ordered_wells())
    reimage = output / "out_of_focus.txt"
    reimage.write_text("".join(f"{r.path}\n" for r in screen.to_reimage))
    page = output / "report.html"
    page.write_text(render(screen, output, worst=worst), encoding="utf-8")
    return screen, [page, wells_csv, reimage]


def _annotated_png(path, folder):
    """The PNG as results.csv names it (relative to where predict ran) or in the results folder, if it exists."""
    if not path:
        return ""
    for candidate in (Path(path), Path(folder) / Path(path).name):
        if candidate.is_file():
            return str(candidate.resolve())
    return ""


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _round(value):
    return "" if math.isnan(value) else round(value, 4)
