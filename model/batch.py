"""``focus-quality predict``: many files in, ``results.csv``, ``patches.csv`` and PNGs out.

Rows are written as each file finishes, in input order, and nothing else is
kept, so memory does not grow with the number of files, and planes are read
band by band, so it does not grow with their size either. A file that cannot
be read or assessed becomes a row with ``error`` filled in. Files are assessed
in this process, in worker processes (``workers``) or on a Dask cluster
(``scheduler``); every route writes the same numbers. With ``resume`` the files
already in ``results.csv`` are skipped.
"""
import csv
import io
import logging
import os
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from .constants import DEFAULT_TIME_LIMIT, NUM_LEVELS, PATCH_SIZE
from .image_files import ImageFileError, open_planes
from .scaling import ImageError, in_host_words

LOGGER = logging.getLogger(__name__)

PROBABILITY_COLUMNS = [f"probability_{k}" for k in range(NUM_LEVELS)]
PLANE_COLUMNS = ["path", "plane", "series", "channel", "z", "t"]
RESULT_COLUMNS = (PLANE_COLUMNS + ["predicted_level", "expected_level", "in_focus",
                                   "aggregate_certainty", "mean_certainty", "max_certainty", "weighted_certainty",
                                   "patch_count", "empty_patches"] + PROBABILITY_COLUMNS
                  + ["best_plane", "annotated", "error"])
PATCH_COLUMNS = (PLANE_COLUMNS + ["patch", "row", "col", "size", "level", "certainty", "empty"]
                 + PROBABILITY_COLUMNS)
RESULTS_FILE, PATCHES_FILE = "results.csv", "patches.csv"
#: Names the file this process is reading (in-process runs); left behind only if reading it ended the process.
IN_PROGRESS_FILE = ".reading"
#: :data:`model.scaling.MAX_VALUE_ADVICE` in the words of the command line.
CLI_MAX_VALUE_ADVICE = "Pass --max-value 65535 if the values are raw camera counts."


@dataclass
class PredictOptions:
    """What ``predict`` does with every file: which planes, and what :func:`model.inference.predict` gets."""

    n_rows: int = None
    n_cols: int = None
    max_value: float = None
    model: object = None
    annotate: bool = True
    channel: int = None
    z: int = None
    t: int = None
    series: int = None
    axes: str = None

    def selection(self):
        return {"channel": self.channel, "z": self.z, "t": self.t, "series": self.series, "axes": self.axes}


@dataclass
class AssessedPlane:
    labels: dict
    result: object  # FocusResult
    annotated: str = ""
    best: object = ""  # True/False within a focal series (same series, channel, time point), "" if alone


@dataclass
class FileOutcome:
    """One input file's planes, or why it could not be assessed."""

    path: str
    planes: list = field(default_factory=list)
    error: str = ""

    @property
    def failed(self):
        return bool(self.error)

    def rows(self):
        """The results.csv rows: one per plane, or one error row."""
        if self.failed:
            return [{"path": self.path, "error": self.error}]
        return [{"path": self.path, **p.labels, **p.result.summary(), "best_plane": p.best,
                 "annotated": p.annotated, "error": ""} for p in self.planes]


def assess_file(path, options, annotated_dir=None, png_stem=None):
    """Assess every (selected) plane of one file; never raises for a bad file, only for a bad model."""
    from .inference import best_in_series, predict
    from .overlay import annotate

    assessed = []
    try:
        with open_planes(path, **options.selection()) as planes:
            for plane in planes:
                result = predict(plane.pixels, n_rows=options.n_rows, n_cols=options.n_cols,
                                 max_value=options.max_value, model=options.model)
                png = ""
                if options.annotate and annotated_dir is not None:
                    suffix = f".plane{plane.index:03d}" if len(planes) > 1 else ""
                    png = Path(annotated_dir) / f"{png_stem}{suffix}.focus.png"
                    _write_png(png, annotate(plane.pixels, result))
                assessed.append(AssessedPlane(plane.labels(), result, str(png)))
    except (ImageFileError, ImageError) as exc:
        message = in_host_words(exc, path, CLI_MAX_VALUE_ADVICE)
        return FileOutcome(str(path), error=message if str(path) in message else f"{path}: {message}")
    marks = best_in_series([tuple(p.labels[k] for k in ("series", "channel", "t")) for p in assessed],
                           [p.result for p in assessed])
    for plane, best in zip(assessed, marks):
        plane.best = "" if best is None else best
    return FileOutcome(str(path), assessed)


def _write_png(path, rgb):
    from PIL import Image

    Image.fromarray(rgb).save(path)


def _format(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


#: A patches.csv line after its plane's cells: patch, row, col, size, level, certainty, empty, probabilities.
_PATCH_LINE = ",%d,%d,%d,%d,%s,%.6g,%s" + ",%.6g" * NUM_LEVELS + "\r\n"


def _patch_lines(outcome):
    """The patches.csv lines of ``outcome``: each plane's cells, then FocusResult.patch_rows()'s values.

    They are formatted a whole line at a time, as csv.DictWriter with ``_format`` would write them: a
    plate's patches.csv has hundreds of rows per image, and formatting them cell by cell took as long
    as the network.
    """
    for p in outcome.planes:
        cells = io.StringIO()
        csv.writer(cells).writerow([_format(v) for v in ({"path": outcome.path, **p.labels}[k]
                                                            for k in PLANE_COLUMNS)])
        prefix = cells.getvalue().rstrip("\r\n")
        r = p.result
        for i, ((row, col), probs, empty, cert) in enumerate(zip(
                r.patch_origins.tolist(), r.patch_probabilities.tolist(), r.patch_empty.tolist(),
                r.patch_certainties.tolist())):
            level = "nan" if empty else probs.index(max(probs))
            yield prefix + _PATCH_LINE % (i, row, col, PATCH_SIZE, level, cert, empty, *probs)


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
        self._files[0].writelines(_patch_lines(outcome))
        self._files[0].flush()
        self._results.writerows({k: _format(v) for k, v in row.items()} for row in outcome.rows())
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


def _stopped_on(output_dir):
    """The file an earlier in-process run was reading when it ended, if it ended abruptly."""
    marker = Path(output_dir) / IN_PROGRESS_FILE
    if not marker.is_file():
        return None
    stopped = marker.read_text().strip()
    marker.unlink()
    return stopped or None


def default_workers():
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def predict_files(paths, output_dir, options=None, *, progress=None, workers=1, resume=False, scheduler=None,
                  time_limit=DEFAULT_TIME_LIMIT):
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
    time_limit : float
        With worker processes: seconds one file may take before its worker is replaced and the
        file gets an error row (a decoder that hangs). A worker that crashes is replaced too.

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
    stopped = _stopped_on(writer.output_dir) if resume else None
    if stopped is not None and any(str(path) == stopped for path, _ in jobs):
        jobs = [(path, stem) for path, stem in jobs if str(path) != stopped]
        writer.write(FileOutcome(stopped, error=f"{stopped}: the previous run ended while reading this file "
                                                "(a damaged file?); skipped"))
        failed += 1
        LOGGER.warning("%s: the previous run ended while reading it; skipped", stopped)
    try:
        outcomes = _assess_all(jobs, options, writer.output_dir, min(workers, len(jobs)), scheduler, time_limit)
        for outcome in tqdm(outcomes, total=len(jobs), desc="assessing focus", unit="image",
                            disable=None if progress is None else not progress):
            writer.write(outcome)
            if outcome.failed:
                failed += 1
                LOGGER.warning("%s", outcome.error)
    finally:
        writer.close()
    return failed


def _assess_all(jobs, options, annotated_dir, workers, scheduler, time_limit=None):
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
        marker = Path(annotated_dir) / IN_PROGRESS_FILE
        for path, stem in jobs:
            # Only a decoder that takes this process down leaves the marker (an interruption, Ctrl-C,
            # removes it): --resume then skips that file.
            marker.write_text(f"{path}\n")
            try:
                outcome = assess_file(path, options, annotated_dir, stem)
            finally:
                marker.unlink(missing_ok=True)
            yield outcome
        return
    pool = _WorkerPool(workers, options, annotated_dir, time_limit)
    try:
        yield from pool.outcomes(jobs)
    finally:
        pool.close()


class _WorkerPool:
    """Worker processes assessing files, with at most two files per worker in flight, outcomes in input order.

    A decoder that crashes its process or hangs must not end the run: a worker that dies
    or spends more than ``time_limit`` seconds on one file is replaced, and that file gets
    an error row. When a worker dies, the files then in flight are assessed again one at a
    time, so that only the file that kills a worker on its own is blamed.
    """

    def __init__(self, workers, options, annotated_dir, time_limit):
        self.workers, self.options, self.annotated_dir = workers, options, annotated_dir
        self.time_limit = time_limit
        self.threads = max(1, default_workers() // workers)
        self.pool = None

    def _start(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: TensorFlow's threads do not survive a fork.
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_worker, initargs=(self.threads,))

    def _submit(self, job):
        if self.pool is None:
            self._start()
        return self.pool.submit(assess_file, job[0], self.options, self.annotated_dir, job[1])

    def close(self, kill=False):
        if self.pool is None:
            return
        if kill:  # a worker stuck in a decoder never returns: end the processes themselves
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.kill()
        self.pool.shutdown(wait=not kill, cancel_futures=True)
        self.pool = None

    def outcomes(self, jobs):
        from concurrent.futures import TimeoutError as FutureTimeout
        from concurrent.futures.process import BrokenProcessPool

        jobs, pending, suspects = deque(jobs), deque(), deque()
        while jobs or pending or suspects:
            # After a worker died, the files that were in flight go through one at a time.
            window = 1 if suspects else 2 * self.workers
            source = suspects if suspects else jobs
            while source and len(pending) < window:
                job = source.popleft()
                pending.append((job, self._submit(job)))
            job, future = pending.popleft()
            try:
                yield future.result(timeout=self.time_limit)
            except FutureTimeout:
                yield FileOutcome(str(job[0]), error=f"{job[0]}: reading it did not end within {self.time_limit} s "
                                                     "(a damaged file, or an unreachable disk?); skipped")
                suspects.extendleft(reversed([j for j, _ in pending]))
                pending.clear()
                self.close(kill=True)
            except BrokenProcessPool:
                self.close(kill=True)
                if window == 1:  # alone in the pool: this file killed its worker
                    yield FileOutcome(str(job[0]), error=f"{job[0]}: the reader crashed its process on this file "
                                                         "(a damaged file?); skipped")
                else:
                    suspects.extendleft(reversed([job] + [j for j, _ in pending]))
                pending.clear()


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
