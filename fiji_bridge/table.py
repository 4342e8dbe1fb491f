"""The "Focus Quality" results: one row per patch, then a "whole image" row per plane.

The same rows fill ImageJ's ResultsTable (ImageJ-style column names) and the
CSV of headless runs (snake_case, as ``focus-quality predict`` writes).
The whole-image rows mark the best plane of each focal series: the planes that
share channel and frame.
"""
import csv

from model.constants import NUM_LEVELS, PATCH_SIZE

#: (ImageJ column, CSV column) in order.
COLUMNS = ([("Image", "image"), ("Region", "region"), ("Plane", "plane"), ("Channel", "channel"),
            ("Slice", "slice"), ("Frame", "frame"), ("X", "x"), ("Y", "y"), ("Width", "width"),
            ("Height", "height"), ("Level", "level"), ("Certainty", "certainty"),
            ("ExpectedLevel", "expected_level"), ("InFocus", "in_focus")]
           + [(f"P{k}", f"probability_{k}") for k in range(NUM_LEVELS)]
           + [("MeanCertainty", "mean_certainty"), ("MaxCertainty", "max_certainty"),
              ("WeightedCertainty", "weighted_certainty"), ("PatchCount", "patch_count"),
              ("EmptyPatches", "empty_patches"), ("BestPlane", "best_plane")])
TEXT_COLUMNS = ("image", "region")
#: Decimal places in the table and its CSV (ImageJ's default of 3 would round small probabilities to 0).
DECIMALS = 6
NAN = float("nan")


def rows(title, planes):
    """Row dicts (CSV keys) for assessed planes: each plane's patches, then its whole-image row."""
    out = []
    for plane in planes:
        position, result = plane.position, plane.result
        where = {"image": title, "plane": position.index, "channel": position.channel,
                 "slice": position.slice, "frame": position.frame}
        for patch in result.patch_rows():
            out.append({**where, "region": f"patch {patch['patch']}", "x": patch["col"], "y": patch["row"],
                        "width": PATCH_SIZE, "height": PATCH_SIZE, "level": patch["level"],
                        "certainty": patch["certainty"],
                        **{f"probability_{k}": patch[f"probability_{k}"] for k in range(NUM_LEVELS)}})
        summary = result.summary()
        height, width = result.image_shape
        out.append({**where, "region": "whole image", "x": 0, "y": 0, "width": width, "height": height,
                    "level": summary["predicted_level"], "certainty": summary["aggregate_certainty"],
                    "best_plane": NAN if plane.best is None else float(plane.best),
                    **{key: summary[key] for key in ("expected_level", "in_focus", "mean_certainty", "max_certainty",
                                                     "weighted_certainty", "patch_count", "empty_patches")},
                    **{f"probability_{k}": summary[f"probability_{k}"] for k in range(NUM_LEVELS)}})
    return out


def results_table(table_rows):
    """An ImageJ ResultsTable of ``table_rows``; numbers missing from a row are NaN."""
    from ._java import jimport

    table = jimport("ij.measure.ResultsTable")()
    table.setPrecision(DECIMALS)
    for row in table_rows:
        table.incrementCounter()
        for imagej, key in COLUMNS:
            if key in TEXT_COLUMNS:
                table.addValue(imagej, str(row[key]))
            else:
                table.addValue(imagej, float(row.get(key, NAN)))
    return table


def write_csv(table_rows, path):
    """The rows as CSV, one column per :data:`COLUMNS`; missing numbers are left empty."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, [key for _, key in COLUMNS])
        writer.writeheader()
        for row in table_rows:
            writer.writerow({key: _cell(row.get(key)) for _, key in COLUMNS})


def _cell(value):
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return int(value)
    return f"{value:.{DECIMALS}g}" if isinstance(value, float) else value
