"""``focus-quality predict``: many files in, ``results.csv``, ``patches.csv`` and PNGs out.

Rows are written as each file finishes, in input order, and nothing else is
kept, so memory does not grow with the number of files. A file that cannot be
read or assessed becomes a row with ``error`` filled in. Files are assessed in
this process, in worker processes (``workers``) or on a Dask cluster
(``scheduler``); every route writes the same numbers. With ``resume`` the files
already in ``results.csv`` are skipped.
"""
import csv
import logging
import os
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from .constants import NUM_LEVELS
from .image_files import ImageFileError, read_planes
from .scaling import ImageError

LOGGER = logging.getLogger(__name__)

PROBABILITY_COLUMNS = [f"probability_{k}" for k in range(NUM_LEVELS)]
RESULT_COLUMNS = (["path", "plane", "predicted_level", "expected_level", "in_focus",
                   "aggregate_certainty", "mean_certainty", "max_certainty", "weighted_certainty",
                   "patch_count", "empty_patches"] + PROBABILITY_COLUMNS + ["best_plane", "annotated", "error"])
PATCH_COLUMNS = (["path", "plane", "patch", "row", "col", "size", "level", "certainty", "empty"]
                 + PROBABILITY_COLUMNS)
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
    """Appends result and patch rows to the two CSV files as files finish.

    Patch rows are flushed before the file's result rows, so a file counts as
    done exactly when its row is in ``results.csv``: after an interruption,
    ``resume=True`` keeps those files, drops any partial line and any patch rows
    of files that were not finished, and appends.
    """

    def __init__(self, output_dir, *, resume=False):
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        results, patches = self.output_dir / RESULTS_FILE, self.output_dir / PATCHES_FILE
        self.done = set()
        if resume and results.exists():
            self.done = {row["path"] for row in _complete_rows(results)}
            _keep_rows(patches, lambda row: row["path"] in self.done)
        fresh = not self.done
        self._files = [open(path, "w" if fresh else "a", newline="") for path in (patches, results)]
        self._patches = csv.DictWriter(self._files[0], PATCH_COLUMNS, extrasaction="ignore")
        self._results = csv.DictWriter(self._files[1], RESULT_COLUMNS, extrasaction="ignore")
        if fresh:
            self._patches.writeheader()
            self._results.writeheader()

    def write(self, outcome):
        self._patches.writerows({k: _format(v) for k, v in row.items()} for row in outcome.patch_rows)
        self._files[0].flush()
        self._results.writerows({k: _format(v) for k, v in row.items()} for row in outcome.rows)
        self._files[1].flush()

    def close(self):
        for f in self._files:
            f.close()


def _drop_partial_line(path):
    """Cut off a last line that an interruption left unfinished."""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) != b"\n":
            f.seek(0)
            f.truncate(f.read().rfind(b"\n") + 1)


def _complete_rows(path):
    """The complete rows of a CSV file."""
    _drop_partial_line(path)
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _keep_rows(path, keep):
    """Rewrite a CSV file with only the complete rows for which ``keep(row)`` is true (streamed)."""
    if not path.exists():
        return
    _drop_partial_line(path)
    tmp = path.with_suffix(".tmp")
    with open(path, newline="") as src, open(tmp, "w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, reader.fieldnames)
        writer.writeheader()
        writer.writerows(row for row in reader if keep(row))
    tmp.replace(path)


def default_workers():
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def predict_files(paths, output_dir, options=None, *, progress=None, workers=1, resume=False, scheduler=None):
    """Assess ``paths`` and write the results folder; returns the number of failed files.

    Parameters
    ----------
    paths : list of Path
    output_dir : str or Path
    options : PredictOptions, optional
    progress : bool, optional
        Show a progress bar; default: when writing to a terminal.
    workers : int
        Worker processes (1 = this process). Each loads the model once.
    resume : bool
        Skip the files already in ``output_dir/results.csv`` and append the others.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): the files are assessed by
        its workers, which need this package installed and ``output_dir`` (for the
        PNGs) on a shared file system. ``workers`` is then ignored.

    Raises
    ------
    model.predictor.ModelError
        If the model cannot be loaded: no file could be assessed, so the run stops.
    """
    from tqdm import tqdm

    options = options or PredictOptions()
    writer = ResultWriter(output_dir, resume=resume)
    stems = UniqueStems()
    # Stems come from the whole input list, so a resumed run names its PNGs as the first run would have.
    jobs = [(path, stems(path)) for path in paths]
    jobs = [(path, stem) for path, stem in jobs if str(path) not in writer.done]
    if len(paths) > len(jobs):
        LOGGER.info("resuming: %d of %d files are already in the results", len(paths) - len(jobs), len(paths))
    failed = 0
    try:
        outcomes = _assess_all(jobs, options, writer.output_dir, min(workers, len(jobs)), scheduler)
        for outcome in tqdm(outcomes, total=len(jobs), desc="assessing focus", unit="image",
                            disable=None if progress is None else not progress):
            writer.write(outcome)
            if outcome.failed:
                failed += 1
                LOGGER.warning("%s", outcome.rows[0]["error"])
    finally:
        writer.close()
    return failed


def _assess_all(jobs, options, annotated_dir, workers, scheduler):
    """Outcomes of ``jobs`` in their order, from wherever they are computed."""
    from .predictor import load_model

    if scheduler or workers > 1:  # other processes load the model themselves, from its folder
        options = replace(options, model=getattr(options.model, "path", options.model))

    if scheduler:
        from dask.distributed import Client

        with Client(scheduler) as client:
            window = 2 * max(1, len(client.scheduler_info()["workers"]))
            submit = lambda job: client.submit(assess_file, job[0], options, annotated_dir, job[1], pure=False)  # noqa: E731
            yield from _in_order(submit, jobs, window)
        return
    if workers <= 1:
        options = replace(options, model=load_model(options.model))
        for path, stem in jobs:
            yield assess_file(path, options, annotated_dir, stem)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, default_workers() // workers)
    # spawn, not fork: TensorFlow's threads do not survive a fork.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(threads,)) as pool:
        submit = lambda job: pool.submit(assess_file, job[0], options, annotated_dir, job[1])  # noqa: E731
        yield from _in_order(submit, jobs, 2 * workers)


def _start_worker(threads):
    from .predictor import limit_threads

    limit_threads(threads)


def _in_order(submit, jobs, window):
    """Submit jobs keeping at most ``window`` in flight; yield their results in job order."""
    pending = deque()
    for job in jobs:
        pending.append(submit(job))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
