"""Where on a plate an image was taken: plate, well, site and channel from its file name.

High-content instruments name their files after the well, the field (site) and the
channel; :data:`INSTRUMENT_PATTERNS` knows the common ones, and a user's own regular
expression with the same named groups (``plate``, ``well`` or ``row`` + ``column``,
``site``, ``channel``) takes their place. A file whose pattern names no plate gets the
name of its folder as plate.
"""
import re
from dataclasses import dataclass
from pathlib import PurePath

#: Built-in file-name patterns, tried in this order (case-insensitive, anywhere in the name).
INSTRUMENT_PATTERNS = {
    # Phenix/Operetta: r02c05f03p01-ch2sk1fk1fl1.tiff (row, column, field, plane, channel)
    "Opera / Operetta Phenix": r"r(?P<row>\d{1,2})c(?P<column>\d{1,2})f(?P<site>\d+)(?:p\d+)?-ch(?P<channel>\d+)",
    # CellVoyager: AssayPlate_B03_T0001F002L01A01Z01C01.tif (well, field F, channel C)
    "Yokogawa CellVoyager": r"(?:^|_)(?P<well>[A-Z]{1,2}\d{1,2})_T\d{4}F(?P<site>\d{3})L\d{2}A\d{2}Z\d{2}C(?P<channel>\d{2})",
    # MetaXpress: Plate1_B02_s3_w2<UUID>.tif (site or channel may be left out, not both: "x_B02.tif" is too loose)
    "ImageXpress": r"^(?P<plate>.+?)_(?P<well>[A-Z]{1,2}\d{1,2})(?=_[sw]\d)(?:_s(?P<site>\d+))?(?:_w(?P<channel>\d))?",
}

#: Wells by plate format: (rows, columns).
PLATE_FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}


@dataclass(frozen=True)
class WellSite:
    """Where one image was taken. ``row`` and ``column`` count from 1; ``site`` and ``channel`` may be ""."""

    plate: str
    row: int
    column: int
    site: str
    channel: str

    @property
    def well(self):
        """The well as instruments write it: B02, AF48."""
        return f"{row_letters(self.row)}{self.column:02d}"


def compile_patterns(pattern=None):
    """``[(name, compiled regex)]``: the user's ``pattern`` alone, or the built-in ones.

    Raises ``ValueError`` for a pattern that is not a regular expression or names neither
    ``well`` nor ``row`` and ``column``.
    """
    if pattern is None:
        return [(name, re.compile(p, re.IGNORECASE)) for name, p in INSTRUMENT_PATTERNS.items()]
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"--pattern {pattern!r} is not a regular expression: {exc}") from None
    groups = set(compiled.groupindex)
    if "well" not in groups and not {"row", "column"} <= groups:
        raise ValueError(f"--pattern {pattern!r} must name the group `well`, or `row` and `column` "
                         "(e.g. (?P<well>[A-P][0-9]{2}))")
    return [("--pattern", compiled)]


def locate(path, patterns):
    """The :class:`WellSite` of the image at ``path`` by the first pattern that matches its name, else None."""
    path = PurePath(path)
    for _, regex in patterns:
        match = regex.search(path.name)
        if match is None:
            continue
        found = {k: v for k, v in match.groupdict().items() if v is not None}
        try:
            if "well" in found:
                row, column = parse_well(found["well"])
            else:
                row, column = int(found["row"]), int(found["column"])
        except (KeyError, ValueError):
            continue
        if row < 1 or column < 1:
            continue
        plate = found.get("plate") or path.parent.name or "plate"
        return WellSite(plate, row, column, _number(found.get("site", "")), _number(found.get("channel", "")))
    return None


def parse_well(well):
    """``(row, column)`` from a well name: "B02" -> (2, 2), "af48" -> (32, 48)."""
    match = re.fullmatch(r"([A-Za-z]{1,2})0*(\d{1,2})", well.strip())
    if not match:
        raise ValueError(f"{well!r} is not a well name such as B02")
    letters, column = match.group(1).upper(), int(match.group(2))
    row = 0
    for letter in letters:
        row = row * 26 + ord(letter) - ord("A") + 1
    return row, column


def row_letters(row):
    """The row's letters: 1 -> A, 16 -> P, 27 -> AA, 32 -> AF."""
    return (chr(ord("A") + (row - 1) // 26 - 1) if row > 26 else "") + chr(ord("A") + (row - 1) % 26)


def plate_format(wells):
    """The smallest standard plate (96, 384, 1536) holding every ``(row, column)`` of ``wells``."""
    rows = max((r for r, _ in wells), default=1)
    columns = max((c for _, c in wells), default=1)
    for size, (n_rows, n_columns) in PLATE_FORMATS.items():
        if rows <= n_rows and columns <= n_columns:
            return size
    raise ValueError(f"wells up to row {rows} and column {columns} fit no 96-, 384- or 1536-well plate")


def _number(text):
    """Sites and channels without leading zeros ("003" -> "3"), so every instrument's numbers compare alike."""
    return str(int(text)) if text.isdigit() else text
