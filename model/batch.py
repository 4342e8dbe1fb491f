"""``focus-quality predict``: many files in, ``results.csv``, ``patches.csv`` and PNGs out.

Rows are written as each file finishes (nothing accumulates in memory), and a
file that cannot be read or assessed becomes a row with ``error`` filled in.
"""
import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .constants import NUM_LEVELS
from .image_files import ImageFileError, read_planes
from .scaling import ImageError

LOGGER = logging.getLogger(__name__)

PROBABILITY_COLUMNS = [f"probability_{k}" for k in range(NUM_LEVELS)]
RESULT_COLUMNS = (["path", "plane", "predicted_level", "expected_level", "in_focus",
                   "aggregate_certainty", "mean_certainty", "max_certainty", "weighted_certainty",
                   "patch_count"] + PROBABILITY_COLUMNS + ["best_plane", "annotated", "error"])
PATCH_COLUMNS = ["path", "plane", "patch", "row", "col", "size", "level", "certainty"] + PROBABILITY_COLUMNS
RESULTS_FILE, PATCHES_FILE = "results.csv", "patches.csv"


@dataclass
class PredictOptions:
    """What ``predict`` passes to :func:`model.inference.predict` for every plane."""

    n_rows: int = None
    n_cols: int = None
    max_value: float = None
    model: object = None
    annotate: bool = True


@dataclass
class FileOutcome:
    """Rows for one input file: one per plane (or one error row)."""

    rows: list = field(default_factory=list)
    patch_rows: list = field(default_factory=list)
    failed: bool = False


def assess_file(path, options, annotated_dir=None, png_stem=None):
    """Assess every plane of one file; never raises for a bad file, only for a bad model."""
    from .inference import best_plane, predict
    from .overlay import annotate

    outcome = FileOutcome()
    try:
        planes = read_planes(path)
        results = [(label, plane, predict(plane, n_rows=options.n_rows, n_cols=options.n_cols,
                                          max_value=options.max_value, model=options.model))
                   for label, plane in planes]
    except (ImageFileError, ImageError) as exc:
        message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        return FileOutcome(rows=[{"path": str(path), "error": message}], failed=True)
    best = best_plane([r for _, _, r in results]) if len(results) > 1 else None
    for label, plane, result in results:
        png = ""
        if options.annotate and annotated_dir is not None:
            suffix = f".plane{label:03d}" if len(results) > 1 else ""
            png = Path(annotated_dir) / f"{png_stem}{suffix}.focus.png"
            _write_png(png, annotate(plane, result))
        row = {"path": str(path), "plane": label, **result.summary(),
               "best_plane": "" if best is None else label == best, "annotated": str(png), "error": ""}
        outcome.rows.append(row)
        outcome.patch_rows.extend({"path": str(path), "plane": label, **p} for p in result.patch_table())
    return outcome


def _write_png(path, rgb):
    from PIL import Image

    Image.fromarray(rgb).save(path)


def _format(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class UniqueStems:
    """Output names for input files: the file's stem, numbered when an earlier input had the same one."""

    def __init__(self):
        self._taken = set()

    def __call__(self, path):
        stem, n = Path(path).stem, 1
        while stem in self._taken:
            n += 1
            stem = f"{Path(path).stem}_{n}"
        self._taken.add(stem)
        return stem


class ResultWriter:
    """Appends result and patch rows to the two CSV files as files finish."""

    def __init__(self, output_dir):
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._files = [open(self.output_dir / name, "w", newline="") for name in (RESULTS_FILE, PATCHES_FILE)]
        self._results = csv.DictWriter(self._files[0], RESULT_COLUMNS, extrasaction="ignore")
        self._patches = csv.DictWriter(self._files[1], PATCH_COLUMNS, extrasaction="ignore")
        self._results.writeheader()
        self._patches.writeheader()
        self.png_stem = UniqueStems()

    def write(self, outcome):
        self._results.writerows({k: _format(v) for k, v in row.items()} for row in outcome.rows)
        self._patches.writerows({k: _format(v) for k, v in row.items()} for row in outcome.patch_rows)
        for f in self._files:
            f.flush()

    def close(self):
        for f in self._files:
            f.close()


def predict_files(paths, output_dir, options=None, *, progress=None):
    """Assess ``paths`` and write the results folder; returns the number of failed files.

    Raises
    ------
    model.predictor.ModelError
        If the model cannot be loaded: no file could be assessed, so the run stops.
    """
    from tqdm import tqdm

    from .predictor import load_model

    options = options or PredictOptions()
    options.model = load_model(options.model) if not hasattr(options.model, "predict_mosaic") else options.model
    writer = ResultWriter(output_dir)
    failed = 0
    try:
        for path in tqdm(paths, desc="assessing focus", unit="image", disable=None if progress is None else not progress):
            outcome = assess_file(path, options, writer.output_dir, writer.png_stem(path))
            writer.write(outcome)
            if outcome.failed:
                failed += 1
                LOGGER.warning("%s", outcome.rows[0]["error"])
    finally:
        writer.close()
    return failed
